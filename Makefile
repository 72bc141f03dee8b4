# Coffer: `make run` serves the API, `make test` runs the test suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

# Defaults for the processes supervisord starts; .env and the environment override them.
-include .env
export PORT ?= 5000
export WORKERS ?= 1
export WEB_THREADS ?= 4
export INSTANCE_PATH ?= $(CURDIR)/instance

.PHONY: help run test lint format fuzz bench screenshots deps dev-deps requirements redis migrate clean container-test

help:
	@echo "make run    - install, migrate and serve Coffer on \$$PORT (default 5000)"
	@echo "make test   - install and run the whole test suite"
	@echo "make lint   - ruff check, ruff format --check and mypy"
	@echo "make container-test - build the image and run it with Redis, plain and with compose (root)"
	@echo "make screenshots - run the browser tests, saving the pages they pass to docs/screenshots"
	@echo "make requirements - pin requirements*.txt from requirements*.in again"
	@echo "                    (PIP_COMPILE_ARGS=--upgrade, or --upgrade-package NAME, to move pins)"

$(BIN)/python:
	@if [ -z "$(PYTHON)" ]; then echo "error: Python 3.11 or newer is needed (python3.11 not found)"; exit 1; fi
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: $(PYTHON) is older than Python 3.11"; exit 1; }
	@echo "==> creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV) || { echo "error: could not create $(VENV); install the venv module for $(PYTHON)"; exit 1; }
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip

# requirements-host.txt: requirements.txt (all the image installs) and the redis-server and
# libmagic wheels a machine without Redis or libmagic needs.
$(VENV)/.deps: requirements-host.txt requirements.txt | $(BIN)/python
	@echo "==> installing requirements-host.txt"
	@$(BIN)/pip install -q --disable-pip-version-check -r requirements-host.txt || { echo "error: installing requirements-host.txt failed (see above)"; exit 1; }
	@touch $@

$(VENV)/.dev-deps: requirements-dev.txt $(VENV)/.deps
	@echo "==> installing requirements-dev.txt"
	@$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt || { echo "error: installing requirements-dev.txt failed (see above)"; exit 1; }
	@touch $@

deps: $(VENV)/.deps
dev-deps: $(VENV)/.dev-deps

# requirements*.in are edited by hand; pip-compile pins them and everything they pull in
# (each file constrained by the one before: requirements, -host, -dev).
# Existing pins stay unless the .in files need otherwise or PIP_COMPILE_ARGS says --upgrade.
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make requirements" $(BIN)/pip-compile --quiet \
	--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(PIP_COMPILE_ARGS)

requirements: dev-deps
	@echo "==> pinning requirements.txt, requirements-host.txt and requirements-dev.txt"
	@$(PIP_COMPILE) --output-file requirements.txt requirements.in
	@$(PIP_COMPILE) --output-file requirements-host.txt requirements-host.in
	@$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in

# Exits 0 when Redis answers at REDIS_URL, 3 when `make run` must start a private one.
redis: deps
	@$(BIN)/python deploy/ensure_redis.py; status=$$?; [ $$status -eq 0 ] || [ $$status -eq 3 ]

migrate: deps
	@echo "==> applying migrations"
	@mkdir -p "$(INSTANCE_PATH)"
	@$(BIN)/python manage.py db upgrade 2>&1 | grep -v "^INFO  \[alembic.runtime.migration\] \(Context impl\|Will assume\)" ; exit $${PIPESTATUS[0]}

# --user: supervisord runs as whoever starts it; saying so keeps it from logging a CRIT
# line at every start as root.
run: deps migrate
	@$(BIN)/python deploy/ensure_redis.py; status=$$?; \
	if [ $$status -eq 0 ]; then conf=deploy/supervisord.conf; \
	elif [ $$status -eq 3 ]; then conf=deploy/supervisord-private-redis.conf; \
	else exit $$status; fi; \
	echo "==> starting Coffer on http://127.0.0.1:$(PORT) with $(WORKERS) worker(s); Ctrl-C stops"; \
	PATH="$(CURDIR)/$(BIN):$$PATH" exec $(BIN)/supervisord -c $$conf --user "$$(id -u)"

test: dev-deps
	@echo "==> running the test suite on $${DATABASE_URL:-SQLite}"
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

fuzz: dev-deps
	@echo "==> fuzzing the API with schemathesis, $${FUZZ_EXAMPLES:-500} examples per operation, on $${DATABASE_URL:-SQLite}"
	@PATH="$(CURDIR)/$(BIN):$$PATH" FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} $(BIN)/python -m pytest tests/test_schemathesis.py $(PYTEST_ARGS)

bench: dev-deps
	@echo "==> benchmarking Coffer on SQLite$${DATABASE_URL:+ and PostgreSQL}"
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench $(BENCH_ARGS)

screenshots: dev-deps
	@COFFER_SCREENSHOTS=$(CURDIR)/docs/screenshots PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q tests/test_web_browser.py tests/test_web_folders.py tests/test_web_trash.py tests/test_web_preview_pages.py $(PYTEST_ARGS)

# Builds the Dockerfile and runs the image, plain and through both compose files (root, podman).
container-test:
	@deploy/container-test.sh

lint: dev-deps
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy

format: dev-deps
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
