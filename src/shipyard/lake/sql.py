"""SQL text for the lake's DuckDB statements: the one place identifiers and literals are quoted."""

from __future__ import annotations

from typing import Iterable


def q(name: str) -> str:
    """A quoted identifier (DuckDB, Trino, Athena DML): "a""b"."""
    return '"' + name.replace('"', '""') + '"'


def lit(s: object) -> str:
    """A quoted string literal: 'it''s'."""
    return "'" + str(s).replace("'", "''") + "'"


def sql_list(items: Iterable[str]) -> str:
    """A list literal of strings: ['a', 'b'] (file lists for read_json / read_parquet)."""
    return "[" + ", ".join(lit(i) for i in items) + "]"


def hive_ident(name: str) -> str:
    """An Athena / Hive DDL identifier: `a``b`."""
    return "`" + name.replace("`", "``") + "`"
