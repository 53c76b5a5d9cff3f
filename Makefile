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
	@echo "make bench  - benchmark ipc run against the floor (benchmarks/README.md)"
	@echo "make postgres - install and start a local PostgreSQL for dagster-postgres.yaml"
	@echo "make pictures / make screenshot - redraw the README's pictures"

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

# PostgreSQL instance storage (dagster-postgres.yaml reads DAGSTER_PG_*; set them to use
# another server). `make postgres` (as root, Debian): install the `postgresql` package if
# missing, start the local cluster, create the role (CREATEDB: the test makes a database
# per run) and database; running it again changes nothing. Then `make run-postgres` or
# `make ui-postgres` run with DAGSTER_HOME=.dagster/postgres holding dagster-postgres.yaml.
.PHONY: postgres run-postgres ui-postgres
DAGSTER_PG_HOST ?= localhost
DAGSTER_PG_PORT ?= 5432
DAGSTER_PG_USERNAME ?= ipc
DAGSTER_PG_PASSWORD ?= ipc
DAGSTER_PG_DB ?= ipc_dagster
PG_ENV := $(foreach v,HOST PORT USERNAME PASSWORD DB,DAGSTER_PG_$(v)='$(DAGSTER_PG_$(v))')
PG_DAGSTER_HOME := $(CURDIR)/.dagster/postgres
PSQL := runuser -u postgres -- env -C / psql -p $(DAGSTER_PG_PORT) -v ON_ERROR_STOP=1 -qtA

postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
	@pg_lsclusters -h | grep -q . || pg_createcluster $$(ls /usr/lib/postgresql | sort -V | tail -1) main
	@set -- $$(pg_lsclusters -h | head -1); test "$$3" = "$(DAGSTER_PG_PORT)" || \
	  { echo "cluster $$1/$$2 listens on port $$3, not DAGSTER_PG_PORT=$(DAGSTER_PG_PORT)"; exit 1; }; \
	  pg_ctlcluster $$1 $$2 status >/dev/null || pg_ctlcluster $$1 $$2 start
	@$(PSQL) -c "SELECT 1 FROM pg_roles WHERE rolname = '$(DAGSTER_PG_USERNAME)'" | grep -q 1 || \
	  $(PSQL) -c "CREATE ROLE \"$(DAGSTER_PG_USERNAME)\""
	@$(PSQL) -c "ALTER ROLE \"$(DAGSTER_PG_USERNAME)\" LOGIN CREATEDB PASSWORD '$(DAGSTER_PG_PASSWORD)'"
	@$(PSQL) -c "SELECT 1 FROM pg_database WHERE datname = '$(DAGSTER_PG_DB)'" | grep -q 1 || \
	  $(PSQL) -c "CREATE DATABASE \"$(DAGSTER_PG_DB)\" OWNER \"$(DAGSTER_PG_USERNAME)\""
	@echo "PostgreSQL is up. For dagster-postgres.yaml and tests/test_postgres_instance.py:"
	@echo "  export $(PG_ENV)"

$(PG_DAGSTER_HOME)/dagster.yaml: dagster-postgres.yaml
	mkdir -p $(PG_DAGSTER_HOME)
	cp dagster-postgres.yaml $@

# In the environment, not on the command line make echoes (the password).
run-postgres ui-postgres: export DAGSTER_PG_HOST := $(DAGSTER_PG_HOST)
run-postgres ui-postgres: export DAGSTER_PG_PORT := $(DAGSTER_PG_PORT)
run-postgres ui-postgres: export DAGSTER_PG_USERNAME := $(DAGSTER_PG_USERNAME)
run-postgres ui-postgres: export DAGSTER_PG_PASSWORD := $(DAGSTER_PG_PASSWORD)
run-postgres ui-postgres: export DAGSTER_PG_DB := $(DAGSTER_PG_DB)

run-postgres: $(STAMP) $(PG_DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(PG_DAGSTER_HOME) $(BIN)/ipc run

ui-postgres: $(STAMP) $(PG_DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(PG_DAGSTER_HOME) $(BIN)/dagster dev -m pipelines.definitions

sample: $(STAMP)
	$(BIN)/python data/sample/generate.py

# make pictures: redraw docs/images/*.png (the README's pictures, as the costing assets
# draw them for the UI) from a fresh run on the bundled sample site in a throwaway folder,
# whatever IPC_* says: a real site's figures never land in the repository.
.PHONY: pictures
pictures: $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  mkdir -p "$$tmp/dagster" && cp dagster.yaml "$$tmp/dagster/dagster.yaml" && \
	  env $(foreach v,$(filter IPC_%,$(.VARIABLES)),-u $(v)) DAGSTER_HOME="$$tmp/dagster" \
	    IPC_WAREHOUSE="$$tmp/ipc.duckdb" IPC_EXPORT_DIR="$$tmp/exports" \
	    IPC_RESTRICTED_DIR="$$tmp/restricted" $(BIN)/ipc run >"$$tmp/run.log" 2>&1 || \
	    { tail -n 20 "$$tmp/run.log"; exit 1; }; \
	  $(BIN)/python -m delivery.charts "$$tmp/ipc.duckdb" docs/images && \
	  ls -l docs/images/cost-concentration.png docs/images/mean-cost-by-setting.png

# make bench PEOPLE=250000,1000000 RUNS=3 [BENCH_ARGS='--label "smoke run"']: writes
# benchmarks/results.md (defaults: 250000,1000000 people, 3 runs; see benchmarks/README.md)
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --data-dir benchmarks/data $(if $(PEOPLE),--people $(PEOPLE)) $(if $(RUNS),--runs $(RUNS)) $(BENCH_ARGS)

# make screenshot: redraw docs/images/asset-graph.png, the README's picture of the asset
# graph, from the real UI (dagster-webserver on a free port, throwaway DAGSTER_HOME) in
# headless Chromium, which is installed with apt-get if missing (root, Debian).
.PHONY: screenshot
screenshot: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	$(BIN)/python docs/tools/screenshot.py --output docs/images/asset-graph.png

clean:
	rm -rf data/warehouse data/exports data/.exports-runs data/restricted .dagster
