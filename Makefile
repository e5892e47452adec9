# carepoints developer commands (GNU make). `make help` lists them.
#
# Every target that needs Python depends on $(STAMP): on a fresh machine it
# creates .venv and installs the package with its dev extras; afterwards it
# reinstalls only when pyproject.toml is newer than the stamp.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

HOST ?= 127.0.0.1
PORT ?= 8000
RUN_DB_URL ?= sqlite:///./var/carepoints.db

# PostgreSQL for the test suite (the conftest reads CAREPOINTS_TEST_PG and
# CAREPOINTS_TEST_PG_URL).
PG_HOST ?= 127.0.0.1
PG_PORT ?= 5432
CAREPOINTS_TEST_PG_URL ?= postgresql+psycopg://postgres@$(PG_HOST):$(PG_PORT)/test
PYTEST_ARGS ?=
# pg_isready when installed, else a plain TCP connect.
PG_PROBE = if command -v pg_isready >/dev/null 2>&1; then pg_isready -q -h $(PG_HOST) -p $(PG_PORT); \
	else $(BIN)/python -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 3).close()' \
	$(PG_HOST) $(PG_PORT) 2>/dev/null; fi

.DEFAULT_GOAL := help
.PHONY: help install run test lint bench clean distclean

help:
	@echo "make run    start carepoints on http://$(HOST):$(PORT) (SQLite in var/, demo data)"
	@echo "make test   run the test suite (PostgreSQL tests skipped when it is not reachable)"
	@echo "make lint   ruff, mypy --strict, import-linter"
	@echo "make bench  run the ingest benchmark"
	@echo "make clean  remove var/ and caches (distclean also removes .venv)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }
	$(BIN)/python -m pip install --upgrade pip || { rm -rf $(VENV); exit 1; }

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	mkdir -p var
	CAREPOINTS_DATABASE_URL='$(RUN_DB_URL)' CAREPOINTS_DEV_OTP=1 $(BIN)/carepoints demo
	CAREPOINTS_DATABASE_URL='$(RUN_DB_URL)' CAREPOINTS_DEV_OTP=1 $(BIN)/carepoints serve --host $(HOST) --port $(PORT)

# CI=1 (set by .ci/run) makes PostgreSQL mandatory; elsewhere an unreachable
# server skips the PostgreSQL half with a visible warning. An explicit
# CAREPOINTS_TEST_PG in the environment wins.
test: $(STAMP)
	@if [ -n "$$CAREPOINTS_TEST_PG" ]; then pg="$$CAREPOINTS_TEST_PG"; \
	elif [ -n "$$CI" ]; then pg=require; \
	elif ( $(PG_PROBE) ); then pg=on; \
	else echo "PostgreSQL not reachable on $(PG_HOST):$(PG_PORT): PostgreSQL tests will be SKIPPED"; pg=skip; fi; \
	echo "CAREPOINTS_TEST_PG=$$pg $(BIN)/pytest -n 2 -q --durations=40 $(PYTEST_ARGS)"; \
	CAREPOINTS_TEST_PG=$$pg CAREPOINTS_TEST_PG_URL='$(CAREPOINTS_TEST_PG_URL)' $(BIN)/pytest -n 2 -q --durations=40 $(PYTEST_ARGS)

# All three checks run even when an earlier one fails; the target fails if any did.
lint: $(STAMP)
	@rc=0; \
	echo "+ ruff check ."; $(BIN)/ruff check . || rc=1; \
	echo "+ mypy"; $(BIN)/mypy || rc=1; \
	echo "+ lint-imports"; $(BIN)/lint-imports || rc=1; \
	exit $$rc

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .hypothesis bench/out build dist
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) src/*.egg-info
