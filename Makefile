# The two commands of the README, plus a few helpers.
#   make demo : set up .venv if needed, then train, evaluate and predict on built-in synthetic crowds
#   make test : set up .venv if needed, then every check CI runs
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install sync-check nbtest pytest export clean-nbs app docs

$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/cltr-learn demo --out demo_out

test: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_sync.py
	$(BIN)/nbdev_test --n_workers 2
	$(BIN)/python -m pytest -q tests --ignore=tests/test_sync.py

export: $(STAMP)
	$(BIN)/nbdev_export

clean-nbs: $(STAMP)
	$(BIN)/nbdev_clean
