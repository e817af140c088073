"""Reliability suite fixtures.

Two sizes: the SHORT form runs inside `make test` (bounded: the whole folder in under 2.5
minutes on the 2-core machine); `make reliability` sets SHIPYARD_RELIABILITY=full and runs the
long form (50 kill points per engine, a 1,000-file flood, more hypothesis examples, ...).
`size(short, full)` picks the number for the current mode.

Destinations are the real engines (DuckDB, PostgreSQL, MariaDB), parametrized over every
dialect the propagator registers that can run here (Redshift is plan-only: no cluster).
"""

from __future__ import annotations

import os

import pytest

from shipyard.propagator.dialects import DIALECTS
from tests.propagator.conftest import Dest, Harness, make_dest  # noqa: F401  (re-exported)

FULL = os.environ.get("SHIPYARD_RELIABILITY", "").lower() == "full"


@pytest.fixture(autouse=True)
def _no_settle_time(monkeypatch):
    """Files here are written whole (LocalStore.put renames into place): no settle wait. The
    settle rule has its own tests (test_half_written.py)."""
    monkeypatch.setenv("SHIPYARD_PROPAGATOR__SETTLE_SECONDS", "0")


def size(short, full):
    """The figure for the current mode: `short` in `make test`, `full` in `make reliability`."""
    return full if FULL else short


# Engines that run on this machine, as registered by the propagator (a new dialect whose
# engine runs here joins the suite by being added here; Redshift has no server to run on).
RUNNABLE = [k for k in ("duckdb", "postgres", "mysql") if k in {d().name for d in DIALECTS.values()}]


@pytest.fixture(params=RUNNABLE)
def rdest(request, monkeypatch) -> Dest:
    """A destination of each runnable engine, configured through the environment."""
    return make_dest(request, monkeypatch, request.param)


def table_rows(dest: Dest, table: str, cols: str = "id, name") -> dict:
    """id -> the rest, read through the engine's own driver."""
    return {r[0]: tuple(r[1:]) for r in dest.query(f"SELECT {cols} FROM {table}")}
