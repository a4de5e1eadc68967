# The two commands of the README, each doing its own set-up.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
# Debian's Chromium, for the browser tests (Playwright drives it; it never downloads a browser).
CHROMIUM := /usr/bin/chromium

.PHONY: demo test benchmarks

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dropout-pipeline demo

test: $(STAMP) $(CHROMIUM)
	$(VENV)/bin/pytest

$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

benchmarks: $(STAMP)
	$(VENV)/bin/python -m benchmarks.ingest
	$(VENV)/bin/python -m benchmarks.features
	$(VENV)/bin/python -m benchmarks.train
	$(VENV)/bin/python -m benchmarks.predict
	$(VENV)/bin/python -m benchmarks.semester
	$(VENV)/bin/python -m benchmarks.serve
	$(VENV)/bin/python -m benchmarks.analytics
