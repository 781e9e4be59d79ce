# The two commands of the README, and what they need.
#   make sample  -> generate sample data, run the whole pipeline on it (Spark local mode), write the HTML report
#   make test    -> the whole test suite, with its services (Redis, PostgreSQL) started where absent
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SAMPLE_DIR ?= data/sample
TABLES_DIR ?= data/tables
SAMPLE_APPOINTMENTS ?= 2000
REPORT ?= data/report.html

.PHONY: setup sample test bench bundle clean

$(STAMP): pyproject.toml constraints.txt package.json package-lock.json
	@scripts/check-prereqs.sh "$(PYTHON)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,api,airflow]'
	npm ci --silent --no-audit --no-fund
	$(BIN)/advising local-fs || true  # optimisations, each with a one-line error that says runs work without it;
	$(BIN)/advising class-archive || true  # the archive is built second: it records the class path, the jar included
	@touch $(STAMP)

setup: $(STAMP)

sample: setup
	$(BIN)/advising sample-data --out $(SAMPLE_DIR) --appointments $(SAMPLE_APPOINTMENTS) --seed 7 --force
	$(BIN)/advising run --input $(SAMPLE_DIR) --output $(TABLES_DIR)
	$(BIN)/advising report --tables $(TABLES_DIR) --out $(REPORT)

test: setup
	@scripts/run-tests.sh

bench: setup
	$(BIN)/python bench/pipeline_bench.py --appointments 100000

bundle: setup
	$(BIN)/advising bundle --out dist

clean:
	rm -rf $(VENV) node_modules data dist build .services
