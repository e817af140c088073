# shipyard: one Makefile for a fresh machine. Everything installs into .venv/ in the repo.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
C7N_VENV := .venv-c7n
PYTEST_ARGS ?=

.PHONY: demo demo-photon haproxy test test-fast services install install-dev reliability bench clean help

help:
	@echo "make demo         install and run the propagator on the embedded default (local folder -> DuckDB)"
	@echo "make demo-photon  photon's canary demo on the local target (installs haproxy)"
	@echo "make test         install dev dependencies, make sure services answer, run the test suite"
	@echo "make test-fast    the inner loop: the suite without @pytest.mark.slow tests and tests/reliability"
	@echo "make reliability  the full reliability suite (long)"
	@echo "make bench        the benchmarks (long)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml $(C7N_VENV)/.installed
	$(BIN)/pip install -q -e '.[demo]'
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml $(C7N_VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@ $(VENV)/.installed

# Cloud Custodian pins boto3, urllib3, jsonschema, click... exactly: it gets its own venv, driven
# through its command line by shipyard.custodian (docs/custodian.md says why).
$(C7N_VENV)/.installed: requirements-c7n.txt
	$(PYTHON) -m venv $(C7N_VENV)
	$(C7N_VENV)/bin/pip install -q -r requirements-c7n.txt
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install haproxy
	$(BIN)/shipyard propagator demo

# photon's local target routes through HAProxy (Debian's haproxy package); `make demo` installs
# it so that `shipyard photon demo` works afterwards.
haproxy:
	bash scripts/ensure-services.sh haproxy

demo-photon: install haproxy
	$(BIN)/shipyard photon demo

services:
	bash scripts/ensure-services.sh

test: install-dev services
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The inner loop: no `slow` tests, no reliability short form (both still run in `make test`).
test-fast: install-dev services
	$(BIN)/python -m pytest -q -m "not slow" --ignore=tests/reliability $(PYTEST_ARGS)

reliability: install-dev services
	SHIPYARD_RELIABILITY=full $(BIN)/python -m pytest -q tests/reliability $(HOSTILE) $(PYTEST_ARGS)

# Hostile cases kept beside the code they attack (also part of `make test`).
HOSTILE := tests/store/test_confinement.py tests/streams tests/jarvis/test_hostile.py tests/redact \
  tests/propagator/test_hostile_files.py tests/lake/test_hostile.py tests/pulse/test_hostile.py \
  tests/pulse/test_secrets.py

bench: install-dev services
	$(BIN)/python bench/propagator_load.py
	$(BIN)/python bench/lake_ingest.py
	$(BIN)/python bench/pulse_load.py
	$(BIN)/python bench/streams_gzip.py
	$(BIN)/python bench/site_deploy.py
	$(BIN)/python bench/photon_router.py
	$(BIN)/python bench/photon_router.py --work-us 200

clean:
	rm -rf $(VENV) $(C7N_VENV) .pytest_cache build *.egg-info src/*.egg-info
