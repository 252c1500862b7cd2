# fleetflow: `make local` runs the lifecycle against local Azure; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv tools lint test local clean-local

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

tools:
	nice -n 5 hack/kube/build.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

test: venv tools lint
	$(BIN)/pytest -q

local: venv tools
	$(BIN)/fleetflow local demo
