# Nightwatch: every target sets up what it needs first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
NW     := $(VENV)/bin/nightwatch
OUT    ?= out

.PHONY: setup run test test-slow lint format clean help

help:
	@echo "make run   - set up, then run the pipeline on the built-in simulator and show what it did"
	@echo "make test  - set up, then run the test suite"
	@echo "make lint  - ruff format check and lint"

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(NW) run --simulate 500 --output $(OUT) --summary-json $(OUT)/summary.json

test: setup
	$(PY) -m pytest -q -m "not slow"

test-slow: setup
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: setup
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(OUT) .pytest_cache build *.egg-info
