"""Dialects: what differs between engines, as data and a few capability flags.

A dialect renders identifiers and types and says which strategy its engine uses for each
job (bulk load, upsert, lock). Generic code (plan.py) reads these fields; it never asks which
engine it is talking to. Registry: `DIALECTS`, a plain dict; `get_dialect(name)`.
"""

from __future__ import annotations

from shipyard.errors import ConfigError
from shipyard.propagator.dialects.base import Dialect
from shipyard.propagator.dialects.duckdb import DuckDBDialect
from shipyard.propagator.dialects.mysql import MySQLDialect
from shipyard.propagator.dialects.postgres import PostgresDialect
from shipyard.propagator.dialects.redshift import RedshiftDialect

DIALECTS: dict[str, type[Dialect]] = {
    "duckdb": DuckDBDialect,
    "postgres": PostgresDialect,
    "postgresql": PostgresDialect,
    "redshift": RedshiftDialect,
    "mysql": MySQLDialect,
    "mariadb": MySQLDialect,
}


def get_dialect(name: str) -> Dialect:
    try:
        return DIALECTS[name.lower()]()
    except KeyError:
        raise ConfigError(
            f"unknown destination type {name!r}",
            hint=f"set type to one of: {', '.join(sorted(DIALECTS))}",
        ) from None


__all__ = ["Dialect", "DIALECTS", "get_dialect"]
