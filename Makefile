# Nightwatch: every target sets up what it needs first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
NW     := $(VENV)/bin/nightwatch
OUT    ?= out

EMULATOR_PORT ?= 8085
PROJECT ?= nightwatch-local

.PHONY: setup run stream emulator test test-slow lint format clean help dashboard browser-deps prometheus-deps api bench

DASHBOARD_PORT ?= 8501

help:
	@echo "make run   - set up, then run the pipeline on the built-in simulator and show what it did"
	@echo "make test  - set up, then run the test suite"
	@echo "make stream   - set up, then a live streaming run: Pub/Sub emulator, simulated feed with a Rubin visit burst, metrics"
	@echo "make emulator - run the Pub/Sub emulator in the foreground on 127.0.0.1:$(EMULATOR_PORT) (Ctrl-C stops it)"
	@echo "make lint  - ruff format check and lint, and the layer contract (import-linter, .importlinter)"
	@echo "make bench - benchmarks: batch throughput (Beam vs plain Python, 1 and 2 workers), streaming latency, memory"
	@echo "make dashboard - the operations console on http://127.0.0.1:$(DASHBOARD_PORT) over $(OUT)/ (after make run); creates the first Super Admin"
	@echo "make api   - the external API on http://127.0.0.1:8000/v1 over $(OUT)/ (after make run); then nightwatch api-keys create --user admin --role observer --as admin"

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,dev]'
	touch $@

setup: $(VENV)/.installed

# `users bootstrap` first: the first Super Admin (admin), whom the README's changing commands act as (--as admin).
run: setup
	$(NW) users bootstrap --output $(OUT)
	$(NW) run --simulate 500 --output $(OUT) --summary-json $(OUT)/summary.json

# A live run: the command starts (and stops) its own emulator unless PUBSUB_EMULATOR_HOST names one.
stream: setup
	$(NW) stream --duration 0 --until-idle 15 --night --feed-duration 60 \
		--output $(OUT) --summary-json $(OUT)/stream-summary.json

emulator:
	gcloud beta emulators pubsub start --host-port=127.0.0.1:$(EMULATOR_PORT) --project=$(PROJECT)

test: setup
	$(PY) -m pytest -q -m "not slow"

# The operations console. `users bootstrap` creates the first Super Admin if there is none: the password is
# NIGHTWATCH_ADMIN_PASSWORD if set, else generated and printed once here.
dashboard: setup
	$(NW) users bootstrap --output $(OUT)
	$(VENV)/bin/streamlit run dashboard/app.py --server.address 127.0.0.1 --server.port $(DASHBOARD_PORT) \
		--server.headless true --browser.gatherUsageStats false --client.toolbarMode viewer \
		--client.showErrorDetails none -- --output $(OUT)

# The external API on http://127.0.0.1:$(API_PORT)/v1 over $(OUT)/. A key belongs to a user: `users bootstrap`
# makes the first one (admin) if there is none; the server prints how to create the first key.
API_PORT ?= 8000
api: setup
	$(NW) users bootstrap --output $(OUT)
	$(NW) api --output $(OUT) --port $(API_PORT)

# Headless Chromium and its driver (Debian packages) for the console's browser test.
browser-deps:
	@test -x /usr/bin/chromium && test -x /usr/bin/chromedriver || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }

# promtool (Debian's prometheus package) for the alert rules' checks: promtool check/test rules (slow tests).
prometheus-deps:
	@command -v promtool >/dev/null || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; }

# Benchmarks (not tests): prints the table and writes bench/results/latest-full.json (about 5 minutes).
bench: setup
	$(NW) bench --size full

test-slow: setup browser-deps prometheus-deps
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

format: setup
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(OUT) .pytest_cache build *.egg-info
