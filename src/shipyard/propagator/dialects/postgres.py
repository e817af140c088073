"""PostgreSQL: `<db>` is the database; COPY FROM STDIN; ON CONFLICT; advisory locks."""

from __future__ import annotations

from shipyard.propagator.dialects.base import Dialect


class PostgresDialect(Dialect):
    name = "postgres"
    sqlglot = "postgres"
    bulk = "copy_stdin"
    upsert = "on_conflict"
    lock = "advisory_xact"
