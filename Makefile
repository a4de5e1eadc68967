# The two commands of the README, each doing its own set-up.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: demo test benchmarks

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dropout-pipeline demo

test: $(STAMP)
	$(VENV)/bin/pytest

benchmarks: $(STAMP)
	$(VENV)/bin/python -m benchmarks.ingest
	$(VENV)/bin/python -m benchmarks.features
	$(VENV)/bin/python -m benchmarks.train
	$(VENV)/bin/python -m benchmarks.predict
	$(VENV)/bin/python -m benchmarks.semester
