"""DuckDB: `<db>` is a schema in the warehouse file; DuckDB's own CSV/JSON/Parquet readers."""

from __future__ import annotations

from shipyard.propagator.dialects.base import Dialect


class DuckDBDialect(Dialect):
    name = "duckdb"
    sqlglot = "duckdb"
    param = "?"
    database_is_schema = True
    bulk = "duckdb_read"
    upsert = "on_conflict"
    # DuckDB has no savepoints to fall back from, so the staged rows are always reduced to the
    # last row per key (https://duckdb.org/docs/stable/sql/statements/insert#on-conflict-clause).
    upsert_dedupe = "always"
    # One process owns a DuckDB file for writing; inside it a lock per table is enough.
    lock = "process"
    drop_column_blocked_by_index = True
