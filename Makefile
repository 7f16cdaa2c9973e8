# One entry point for people and CI. `make demo` and `make test` are the two that matter.
SHELL := /bin/bash
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Every other path (warehouse, DAGSTER_HOME, ...) follows from SENTIMENT_HOME in the settings.
export SENTIMENT_HOME ?= $(CURDIR)/.sentiment
HOST ?= 127.0.0.1
# Ports: the CLI's defaults (sentiment_assets/lib/core/ports.py: Dagster 3000, MLflow 5000,
# app 7860) unless DAGSTER_PORT, MLFLOW_PORT or APP_PORT is set.
DAGSTER_PORT_FLAG = $(if $(DAGSTER_PORT),--dagster-port $(DAGSTER_PORT))
DBT_FILES := dbt_project/dbt_project.yml $(shell find dbt_project/models dbt_project/macros dbt_project/tests -type f 2>/dev/null)
MANIFEST := dbt_project/target/manifest.json

.PHONY: setup manifest pipeline demo serve ui screenshots docs test test-fast lint bench bench-monitoring bench-scale bench-prod bench-policy bench-ui bench-finetune-budget compare drift-demo drift-power chaos clean setup-prod prod-up prod-down

setup: $(VENV)/.installed $(MANIFEST)

# torch goes first and pinned: on a CPU machine pip takes the local CPU wheel, whereas an
# unpinned torch pulled in by another package would download a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -d $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check "torch==2.13.0"
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
	$(MAKE) manifest
	touch $@

# The dbt manifest is prepared here, once, never at import time (dagster#33993), and again
# whenever a dbt file changes: Dagster's dbt assets come from it.
$(MANIFEST): $(DBT_FILES) | $(VENV)/.installed
	$(MAKE) manifest

manifest:
	cd dbt_project && DUCKDB_PATH=$${DUCKDB_PATH:-/tmp/parse-only.duckdb} \
		../$(VENV)/bin/dbt parse --quiet --profiles-dir . --project-dir .

pipeline: setup
	$(VENV)/bin/sentiment pipeline

# One variable for the MLflow UI: `make serve` serves it on this port, and `make pipeline`
# writes Dagster's `mlflow_run` metadata links to the same URL.
ifneq ($(MLFLOW_PORT),)
export MLFLOW_UI_URL ?= http://$(HOST):$(MLFLOW_PORT)
endif

# The MLflow UI, the Dagster webserver and daemon, and the Gradio app, supervised by
# `sentiment serve`: each URL is printed once its service answers, a service that dies is
# restarted alone (with backoff) while the others keep serving; Ctrl-C stops them all. Each
# service's output goes to $(SENTIMENT_HOME)/logs/<service>.log, the pipeline's to
# $(SENTIMENT_HOME)/logs/pipeline-<time>.log: the console keeps progress, URLs and errors.
serve: setup
	$(VENV)/bin/sentiment serve --host $(HOST) $(DAGSTER_PORT_FLAG) $(if $(APP_PORT),--app-port $(APP_PORT))

ui: serve

demo: pipeline serve

# The documentation site (docs/, mkdocs.yml) built into site/; open site/index.html.
# The variable silences a banner mkdocs-material prints on every build.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs
docs: setup
	$(MKDOCS) build --strict

# The README's screenshots (docs/screenshots/*.png), taken by the headless-browser tests.
screenshots: setup
	SAVE_SCREENSHOT=1 $(PYTHON) -m pytest -q --timeout 1800 tests/app/test_browser.py tests/serve

# pytest on TEST_WORKERS xdist workers, one module per worker at a time (`loadfile`: a
# module's built home or started servers are made once; `loadgroup` would not do: xdist 3.8
# renames items through an attribute pytest 9.2 no longer reads, so groups are ignored);
# tests/conftest.py sends the modules with `slow` tests first. The default, 0, is one process:
# on 2 cores two workers leave each multi-month build fixture one core, too close to the
# 900 s limit per test; use TEST_WORKERS=2 or more on a bigger machine.
TEST_WORKERS ?= 0
PYTEST_PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/dg check defs
	$(MKDOCS) build --strict --quiet
	$(PYTHON) -m pytest -q $(PYTEST_PARALLEL) --timeout 900 --durations=25

test-fast: setup
	$(PYTHON) -m pytest -q $(PYTEST_PARALLEL) -m "not slow" --timeout 300

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The real-tweet sample bench_embeddings reads (never copied into the repository); .ci/run and
# the real-data tests use the same variable.
SENTIMENT140_CSV ?= $(abspath $(CURDIR)/../shared/data/sentiment140_sample.csv)
# Sentiment140's manually labelled test set, beside the sample.
SENTIMENT140_TEST_CSV ?= $(dir $(SENTIMENT140_CSV))sentiment140_test.csv

bench: setup
	mkdir -p bench/results
	$(PYTHON) -m bench.bench_embeddings --out bench/results/embeddings.json
	@if [ -f "$(SENTIMENT140_CSV)" ]; then \
	  $(PYTHON) -m bench.bench_embeddings --texts-from "$(SENTIMENT140_CSV)" --n 2000 \
	    --out bench/results/embeddings_sentiment140.json; \
	else echo "skipping real-tweet embeddings: no $(SENTIMENT140_CSV)"; fi
	$(PYTHON) -m bench.bench_rematerialize --out bench/results/rematerialize.json
	$(PYTHON) -m bench.bench_serving --out bench/results/serving.json
	$(PYTHON) -m bench.bench_retrain_latency --out bench/results/retrain_latency.json --md bench/results/retrain_latency.md

# Monitoring before labels: estimated vs realised accuracy and prior re-estimation
# (bench/results/estimation.md), and the hyperparameter search's gain (tuning.md); both use
# the Sentiment140 sample where it is present.
bench-monitoring: setup
	mkdir -p bench/results
	SENTIMENT140_CSV=$(SENTIMENT140_CSV) $(PYTHON) -m bench.bench_estimation --out bench/results/estimation.json --md bench/results/estimation.md
	@if [ -f "$(SENTIMENT140_CSV)" ]; then \
	  SENTIMENT140_CSV=$(SENTIMENT140_CSV) $(PYTHON) -m bench.bench_tuning --out bench/results/tuning.json --md bench/results/tuning.md; \
	else echo "skipping the tuning bench: no $(SENTIMENT140_CSV)"; fi

# A month of 100k, 300k and 1M synthetic tweets through ingest, dbt and training, with each
# stage's time and peak RSS (about 8 minutes on 2 cores); bench/results/scale.md.
# SCALE_ARGS=--embed-full also embeds every month in full (about 26 minutes on 2 cores).
bench-scale: setup
	mkdir -p bench/results
	$(PYTHON) -m bench.bench_scale $(SCALE_ARGS) --out bench/results/scale.json --md bench/results/scale.md

# Four synthetic months' data sides built one after another on the embedded profile versus
# all at once on the prod profile (`prod up`, PROD_WORKERS Celery workers); the services
# need `make setup-prod`. bench/results/prod_parallel.md.
bench-prod: setup-prod
	mkdir -p bench/results
	$(PYTHON) -m bench.bench_prod_parallel --workers $(PROD_WORKERS) --out bench/results/prod_parallel.json --md bench/results/prod_parallel.md

# The retraining policies (always, on_drift, never) replayed month by month over a synthetic
# year and the Sentiment140 sample's months (skipped where SENTIMENT140_CSV is missing):
# forward accuracy, training runs and CPU-seconds per policy; bench/results/policy.md.
# One month launched over GraphQL (the UI's path: webserver, daemon, run queue) against the
# same month built by `sentiment pipeline`; bench/results/ui_launch.md.
bench-ui: setup
	mkdir -p bench/results
	$(PYTHON) -m bench.bench_ui_launch --out bench/results/ui_launch.json --md bench/results/ui_launch.md

bench-policy: setup
	mkdir -p bench/results
	SENTIMENT140_CSV="$$( [ -f "$(SENTIMENT140_CSV)" ] && echo "$(SENTIMENT140_CSV)" )" \
	  nice -n 10 $(PYTHON) -m bench.bench_policy --out bench/results/policy.json --md bench/results/policy.md

drift-demo: setup
	$(VENV)/bin/sentiment drift-demo

# The failure scenarios (kill -9 at each step, simultaneous starts, signals while waiting,
# queries during writes, bad files, new months) run for real; bench/results/chaos.md.
chaos: setup
	$(PYTHON) -m bench.chaos --out bench/results/chaos.md

drift-power: setup
	mkdir -p bench/results
	$(PYTHON) -m bench.drift_power --seeds 20 --out bench/results/drift_power.json --md bench/results/drift_power.md

compare: setup
	mkdir -p bench/results
	$(PYTHON) -m bench.compare_families --dataset synthetic --out bench/results/families_synthetic.json --md bench/results/families.md
	$(PYTHON) -m bench.compare_families --dataset sentiment140 --out bench/results/families_sentiment140.json --md bench/results/families.md

# The fine-tuned family trained on a fixed 800 tweets against what its CPU budget
# (--budget-seconds, default SENTIMENT_FINETUNE_CPU_BUDGET_SECONDS' 900) buys, scored on the
# Sentiment140 manual test set (32 minutes on 2 cores shared with other work, skipped without
# the data); bench/results/finetune_budget.md.
bench-finetune-budget: setup
	mkdir -p bench/results
	$(PYTHON) -m bench.bench_finetune_budget --train-csv "$(SENTIMENT140_CSV)" \
	  --test-csv "$(SENTIMENT140_TEST_CSV)" \
	  --out bench/results/finetune_budget.json --md bench/results/finetune_budget.md

# The prod profile on this machine (deploy/README.md): PostgreSQL, Redis, the MLflow server,
# the Dagster webserver and daemon and PROD_WORKERS Celery workers under
# $(SENTIMENT_HOME)/prod; `source $(SENTIMENT_HOME)/prod/env.sh` points the CLI at them.
PROD_WORKERS ?= 2
PROD_MLFLOW_PORT ?= $(MLFLOW_PORT)

setup-prod: setup
	@if [ -z "$$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null)" ] || ! command -v redis-server >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null; \
	fi

prod-up: setup-prod
	$(VENV)/bin/sentiment prod up --workers $(PROD_WORKERS) $(DAGSTER_PORT_FLAG) $(if $(PROD_MLFLOW_PORT),--mlflow-port $(PROD_MLFLOW_PORT))

prod-down:
	$(VENV)/bin/sentiment prod down

clean:
	rm -rf $(SENTIMENT_HOME) dbt_project/target dbt_project/logs
