"""`shipyard propagator infer FILE`: a create spec from a sample file (CSV, JSON lines/array, Parquet).

DuckDB's sniffer types the columns (https://duckdb.org/docs/stable/data/csv/auto_detection);
types are then widened to what every engine loads the same way: integers to INTEGER or BIGINT,
decimals to DOUBLE PRECISION, text to VARCHAR(n) with room to spare, time zones kept as text. A
column that is unique and never empty is proposed as the primary key; the first date or timestamp
column as the sort key (else the key). The spec printed is checked by the dialect before it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from shipyard.errors import InputError
from shipyard.propagator.datafile import file_format
from shipyard.propagator.dialects import get_dialect
from shipyard.propagator.duckdb_reader import map_duckdb_error
from shipyard.propagator.layout import parse_key
from shipyard.propagator.plan import plan_create
from shipyard.propagator.specs import parse_create

_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT"}
_BIG = {"BIGINT", "UINTEGER", "UBIGINT", "HUGEINT"}
_FLOATS = {"FLOAT", "DOUBLE", "REAL"}
_TIMES = {"DATE": "DATE", "TIMESTAMP": "TIMESTAMP", "TIMESTAMP_NS": "TIMESTAMP", "TIMESTAMP_MS": "TIMESTAMP",
          "TIMESTAMP_S": "TIMESTAMP"}


def portable_type(duck_type: str, max_len: int | None) -> str:
    """A type every engine loads a value of `duck_type` into unchanged."""
    t = duck_type.upper()
    if t in _INTEGERS:
        return "INTEGER"
    if t in _BIG:
        return "BIGINT"
    if t in _FLOATS or t.startswith("DECIMAL"):
        return "DOUBLE PRECISION"
    if t == "BOOLEAN":
        return "BOOLEAN"
    if t in _TIMES:
        return _TIMES[t]
    # Text, and what is safest kept as text (TIME, time zones, UUIDs): twice the longest value seen.
    return f"VARCHAR({min(max(2 * (max_len or 1), 16), 65535)})"


def _reader(path: str, fmt: str) -> str:
    lit = "'" + path.replace("'", "''") + "'"
    if fmt == "csv":
        return f"read_csv({lit}, header = true, hive_partitioning = false)"
    if fmt in ("jsonl", "json"):
        return f"read_json({lit}, format = '{'newline_delimited' if fmt == 'jsonl' else 'array'}', hive_partitioning = false)"
    return f"read_parquet({lit}, hive_partitioning = false)"


def infer_spec(path: str, dialect: str = "postgres") -> dict[str, Any]:
    """A create spec (as a dict, checked for `dialect`) for the file at `path`."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path} is not a file", hint="give a local CSV, JSON or Parquet sample")
    fmt, _ = file_format(p.name)
    con = duckdb.connect()
    try:
        # The sample is the user's own local file: read it through a view of a literal path.
        con.execute(f"CREATE TEMP VIEW sample AS SELECT * FROM {_reader(str(p.resolve()), fmt)}")
        described = con.execute("DESCRIBE sample").fetchall()
        total = con.execute("SELECT count(*) FROM sample").fetchone()[0]
        columns: dict[str, str] = {}
        unique_not_null = []
        for name, duck_type, *_ in described:
            q = '"' + str(name).replace('"', '""') + '"'
            longest, distinct, present = con.execute(
                f"SELECT max(length(CAST({q} AS VARCHAR))), count(DISTINCT {q}), count({q}) FROM sample").fetchone()
            col = str(name).strip().lower()
            columns[col] = portable_type(str(duck_type), longest)
            keyable = columns[col] in ("INTEGER", "BIGINT") or columns[col].startswith("VARCHAR")
            if total and distinct == total and present == total and keyable:
                unique_not_null.append(col)
    except duckdb.Error as exc:
        raise map_duckdb_error(exc, None, f"reading {p.name}") from None
    finally:
        con.close()
    if not total:
        raise InputError(f"{p.name} has no rows to learn from", hint="give a sample with some rows")
    key = unique_not_null[:1]
    times = [c for c, t in columns.items() if t in ("DATE", "TIMESTAMP")]
    spec = {"column_specification": columns, "primary_key": key,
            "dist_key": (key or list(columns))[0], "sort_key": times[:1] or key or list(columns)[:1]}
    model = parse_create(json.dumps(spec).encode())  # names are checked identifiers
    d = get_dialect(dialect)
    plan_create(d, parse_key(f"destination={d.name}/database=db/table_name=t/schema/create/t.json"), model)
    return spec
