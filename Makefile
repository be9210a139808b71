# graphrec: `make demo` materializes every asset on the demo data (CPU); `make test` runs the test suite.
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
DATA_DIR ?= $(CURDIR)/data
DAGSTER_HOME_DIR := $(DATA_DIR)/dagster_home
INSTALLED := $(VENV)/.graphrec-installed
# Busy-waiting OpenMP threads make torch's small sparse steps up to 50x slower on a shared machine (models/__init__.py).
export OMP_WAIT_POLICY ?= PASSIVE
DAGSTER_ENV := GRAPHREC_DATA_DIR=$(DATA_DIR) DAGSTER_HOME=$(DAGSTER_HOME_DIR)

.PHONY: install demo ui test

# Reinstalls when pyproject.toml changes; torch first, so that TORCH_SPEC picks its build.
$(INSTALLED): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(TORCH_SPEC)
	$(VENV)/bin/pip install -e '.[dev]'
	touch $@

install: $(INSTALLED)

$(DAGSTER_HOME_DIR)/dagster.yaml: infra/dagster.yaml
	mkdir -p $(DAGSTER_HOME_DIR) $(DATA_DIR)/landing
	cp infra/dagster.yaml $@

demo: install $(DAGSTER_HOME_DIR)/dagster.yaml
	$(DAGSTER_ENV) GRAPHREC_DEVICE=cpu $(VENV)/bin/dagster job execute -m orchestration.definitions -j full_retrain
	@echo
	@echo "Done: every asset of full_retrain is materialized on the demo data."
	@echo "  warehouse:     $(DATA_DIR)/warehouse.duckdb"
	@echo "  artifacts:     $(DATA_DIR)/artifacts"
	@echo "  feature store: $(DATA_DIR)/feature_store"
	@echo "  landing:       $(DATA_DIR)/landing (drop Parquet/CSV files here)"
	@echo "See the run, lineage and metrics in the UI: make ui, then open http://127.0.0.1:3000"

ui: install $(DAGSTER_HOME_DIR)/dagster.yaml
	$(DAGSTER_ENV) $(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000

# Two processes, a test file each at a time (a file's tests share its fixtures): many tests wait on a subprocess, a
# webserver or a browser, and the suite took 599 s where one process took 986 s on 2 cores. Files go in collection
# order, which puts the longest test first (tests/conftest.py), not xdist's default of the most tests first.
test: install
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder
