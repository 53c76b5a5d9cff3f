# One place for every command: the README and .ci/run both call these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell $(PYTHON) -c "import hashlib;print(hashlib.sha256(open('pyproject.toml','rb').read()).hexdigest()[:12])")
export DAGSTER_HOME ?= $(CURDIR)/.dagster

.PHONY: help install run test check lint format typecheck dictionary ui sample clean bench

help:
	@echo "make run    - materialise every asset on the IPC_* settings (default: bundled sample)"
	@echo "make test   - run the whole test suite"
	@echo "make check  - lint, format check, type check, data dictionary up to date"
	@echo "make ui     - start the Dagster UI (dagster dev) on the same definitions"
	@echo "make sample - regenerate the bundled sample site (deterministic)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/ipc run

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

dictionary: $(STAMP)
	$(BIN)/python -m schemas.dictionary --check

check: lint typecheck dictionary

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -m pipelines.definitions

sample: $(STAMP)
	$(BIN)/python data/sample/generate.py

# make bench PEOPLE=250000,1000000 RUNS=3 [BENCH_ARGS='--label "smoke run"']: writes
# benchmarks/results.md (defaults: 250000,1000000 people, 3 runs; see benchmarks/README.md)
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --data-dir benchmarks/data $(if $(PEOPLE),--people $(PEOPLE)) $(if $(RUNS),--runs $(RUNS)) $(BENCH_ARGS)

clean:
	rm -rf data/warehouse data/exports data/.exports-runs data/restricted .dagster
