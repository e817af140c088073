# shipyard: one Makefile for a fresh machine. Everything installs into .venv/ in the repo.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo demo-photon haproxy test services install install-dev reliability bench clean help

help:
	@echo "make demo         install and run the propagator on the embedded default (local folder -> DuckDB)"
	@echo "make demo-photon  photon's canary demo on the local target (installs haproxy)"
	@echo "make test         install dev dependencies, make sure services answer, run the test suite"
	@echo "make reliability  the full reliability suite (long)"
	@echo "make bench        the benchmarks (long)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@ $(VENV)/.installed

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

reliability: install-dev services
	SHIPYARD_RELIABILITY=full $(BIN)/python -m pytest -q tests/reliability $(PYTEST_ARGS)

bench: install-dev services
	$(BIN)/python bench/propagator_load.py
	$(BIN)/python bench/lake_ingest.py
	$(BIN)/python bench/pulse_load.py
	$(BIN)/python bench/photon_router.py
	$(BIN)/python bench/photon_router.py --work-us 200

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
