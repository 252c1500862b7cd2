# fleetflow: `make local` runs the lifecycle against local Azure; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A directory holding a Helm repository index and chart archives, used instead of the public chart
# repositories when set (machines without internet). Override: make local CHART_MIRROR=/path.
CHART_MIRROR ?= $(wildcard $(abspath ../shared/charts))
export FLEETFLOW_CHART_MIRROR ?= $(CHART_MIRROR)

.PHONY: venv tools ui-deps lint test local mutate

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

tools:
	nice -n 5 hack/kube/build.sh

# Headless Chromium (Debian) and playwright-core drive the Prefect UI in tests/product/ui.
ui-deps:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	test -d tests/product/ui/node_modules/playwright-core || (cd tests/product/ui && npm ci --no-audit --no-fund)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: venv tools ui-deps lint
	$(BIN)/pytest -q

local: venv tools
	$(BIN)/fleetflow local demo

# Mutation testing of the modules that decide safety (slow; not part of test or CI). MODULES=tasks.retry narrows it.
mutate: venv
	hack/mutate.sh $(MODULES)
