"""PostgreSQL: `<db>` is the database; COPY FROM STDIN; ON CONFLICT; advisory locks."""

from __future__ import annotations

from shipyard.propagator.dialects.base import Dialect


class PostgresDialect(Dialect):
    name = "postgres"
    sqlglot = "postgres"
    bulk = "copy_stdin"
    upsert = "on_conflict"
    # INSERT ... ON CONFLICT refuses two rows with one key in one statement (SQLSTATE 21000,
    # https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT): try it first,
    # deduplicate only when the file has such rows.
    upsert_dedupe = "fallback"
    lock = "advisory_xact"
