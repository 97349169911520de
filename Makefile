# Each target bootstraps its own virtual environment: a fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test processes: one per core, at most 4 (each starts its own embedded PostgreSQL); TEST_WORKERS=0 runs in one.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)))')

.PHONY: run test lint bench schema clean mutation schema-mutation races

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "yunshegong needs Python 3.11+; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)  ## the service with demo data on the embedded database, at http://127.0.0.1:8000/graphql
	$(BIN)/yunshegong serve --demo

test: $(STAMP)  ## the whole test suite (lint and format check included)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)  ## benchmarks: ratios against a baseline measured in the same run
	$(BIN)/python -m bench.requests_page
	$(BIN)/python -m bench.matching
	$(BIN)/python -m bench.supplies
	$(BIN)/python -m bench.routing  # delivery runs (issue 18): OR-Tools at 1 s and 5 s against a feasible greedy
	$(BIN)/python -m bench.live_latency  # live proofs (issue 16): mutation -> subscriber's message
	$(BIN)/python -m bench.idle_subscribers  # 1,000 idle subscribers: memory each, one event to all
	$(BIN)/python -m bench.imports  # issue 17: import of 10,229 volunteers (CSV, XLSX) against a raw COPY

schema: $(STAMP)  ## regenerate the committed SDL
	$(BIN)/yunshegong schema --builtin-only > schema/schema.graphql.new && mv schema/schema.graphql.new schema/schema.graphql

mutation: $(STAMP)  ## mutmut over the invariant-holding modules, each against its own tests (slow; MODULES="help_requests ...")
	$(BIN)/python -m tests.mutation $(MODULES)

schema-mutation: $(STAMP)  ## drop each guarding constraint/trigger/policy in turn and expect a test to fail
	$(BIN)/python -m tests.schema_mutations $(MUTATIONS)

races: $(STAMP)  ## plant each race the concurrency tests guard and report each test's detection rate (RUNS=10)
	$(BIN)/python -m tests.planted_races --runs $(or $(RUNS),10) $(RACES_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
