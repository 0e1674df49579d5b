# Nightwatch: every target sets up what it needs first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
NW     := $(VENV)/bin/nightwatch
OUT    ?= out

EMULATOR_PORT ?= 8085
PROJECT ?= nightwatch-local

.PHONY: setup run stream emulator test test-slow lint format clean help

help:
	@echo "make run   - set up, then run the pipeline on the built-in simulator and show what it did"
	@echo "make test  - set up, then run the test suite"
	@echo "make stream   - set up, then a live streaming run: Pub/Sub emulator, simulated feed with a Rubin visit burst, metrics"
	@echo "make emulator - run the Pub/Sub emulator in the foreground on 127.0.0.1:$(EMULATOR_PORT) (Ctrl-C stops it)"
	@echo "make lint  - ruff format check and lint"

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(NW) run --simulate 500 --output $(OUT) --summary-json $(OUT)/summary.json

# A live run: the command starts (and stops) its own emulator unless PUBSUB_EMULATOR_HOST names one.
stream: setup
	$(NW) stream --duration 0 --until-idle 15 --rate 40 --feed-duration 60 --burst 1000 --burst-at 20 \
		--output $(OUT) --summary-json $(OUT)/stream-summary.json

emulator:
	gcloud beta emulators pubsub start --host-port=127.0.0.1:$(EMULATOR_PORT) --project=$(PROJECT)

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
