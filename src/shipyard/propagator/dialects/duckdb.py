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
    # One process owns a DuckDB file for writing; inside it a lock per table is enough.
    lock = "process"
    drop_column_blocked_by_index = True
