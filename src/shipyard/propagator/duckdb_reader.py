"""DuckDB as a file reader: its CSV / JSON / Parquet readers, for every destination.

DuckDB is a destination (engines/duckdb.py) and also the strict reader every engine relies on:
it rewrites JSON and Parquet as CSV for COPY, checks CSV for MySQL's lenient LOAD DATA, and
finds the fields JSON records have. Those jobs live here, below plan/ and engines/.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb

from shipyard.errors import InputError, ShipyardError, TransientError
from shipyard.propagator.datafile import DataFile, check_columns
from shipyard.propagator.dialects.duckdb import DuckDBDialect

_D = DuckDBDialect()
_NOT_WHOLE = re.compile(r'column "([^"]+)": (.*) is not a whole number(?: that fits (\w+))?')
_DUCK_LINE = re.compile(r"(?:CSV Error on Line: |Line: |in line )(\d+)")


def reader_sql(data: DataFile, source: str, types: dict[str, str]) -> str:
    """DuckDB's own reader for the file at local path `source`, its columns typed by `types`
    (column -> type). `source` must be a path without glob characters (`literal_path`)."""
    d = _D
    path = d.literal(source)
    if data.format == "csv":
        cols = "{" + ", ".join(f"{d.literal(c)}: {d.literal(types[c])}" for c in data.columns) + "}"
        o = data.options
        # The table's input options (https://duckdb.org/docs/stable/data/csv/overview#parameters):
        # a quote is escaped by doubling it; a quoted field equal to the null string stays text, as
        # in PostgreSQL's COPY; DuckDB decodes latin-1 itself.
        opts = (f"header = {'true' if o.header else 'false'}, delim = {d.literal(o.delimiter)}, "
                f"quote = {d.literal(o.quote)}, escape = {d.literal(o.quote)}"
                + (f", nullstr = {d.literal(o.null)}, allow_quoted_nulls = false" if o.null else "")
                + (f", encoding = {d.literal(o.encoding)}" if o.encoding != "utf-8" else ""))
        # Strict: a short or long row, a stray quote or a bad value is an error with its line,
        # never skipped (https://duckdb.org/docs/stable/data/csv/reading_faulty_csv_files).
        # hive_partitioning off: the key's destination=/database=/table_name= folders are not columns.
        return (f"read_csv({path}, {opts}, auto_detect = false, hive_partitioning = false, "
                f"strict_mode = true, null_padding = false, columns = {cols}"
                + (", compression = 'gzip'" if data.compression == "gzip" else "") + ")")
    if data.format in ("jsonl", "json"):
        cols = "{" + ", ".join(f"{d.literal(c)}: {d.literal(types[c])}" for c in data.columns) + "}"
        fmt = "newline_delimited" if data.format == "jsonl" else "array"
        return (f"read_json({path}, format = '{fmt}', hive_partitioning = false, columns = {cols}"
                + (", compression = 'gzip'" if data.compression == "gzip" else "") + ")")
    return f"read_parquet({path}, hive_partitioning = false)"


# Whole-number column types (DuckDB's and MySQL's names). DuckDB's CSV and JSON readers cast text
# such as '1.5', '1e3' or '0x10' into them as 2, 1000 and 16, JSON true as 1, and MySQL's LOAD DATA
# rounds '2.5' too: such columns are read as text and checked against INT_TEXT.
INT_TEXT = r"\s*[+-]?[0-9]+\s*"  # a whole number as text, as PostgreSQL and MySQL read one
_WHOLE_TYPES = {"tinyint": "TINYINT", "smallint": "SMALLINT", "int2": "SMALLINT", "short": "SMALLINT",
                "mediumint": "INTEGER", "int": "INTEGER", "integer": "INTEGER", "int4": "INTEGER",
                "bigint": "BIGINT", "int8": "BIGINT", "long": "BIGINT", "hugeint": "HUGEINT"}
_TYPE_NAME = re.compile(r"^\s*(u?)([a-z0-9]+)\s*(?:\(\s*(\d+)\s*\))?\s*(unsigned)?\s*$", re.IGNORECASE)


def whole_type(type_text: str) -> str | None:
    """The DuckDB type with the range of a whole-number column type as DuckDB or MySQL names it
    (`INTEGER`, `UBIGINT`, `int(11)`, `bigint unsigned`); None for any other type (MySQL's
    `tinyint(1)` is its BOOLEAN)."""
    m = _TYPE_NAME.match(type_text)
    if not m:
        return None
    u, name, width, unsigned = m.groups()
    duck = _WHOLE_TYPES.get(name.lower())
    if duck is None or (name.lower() == "tinyint" and width == "1" and not u):
        return None
    return "U" + duck if u or unsigned else duck


def whole_number_columns(data: DataFile, types: dict[str, str]) -> set[str]:
    return {c for c in data.columns if c in types and whole_type(types[c])}


def _checked(c: str, cast: str | None) -> str:
    """Column `c` (text) as is or cast to `cast`, or an error naming the column, the value and
    the type it must fit (a whole number within the type's range)."""
    q = _D.q(c)
    value = f"CAST({q} AS {cast})" if cast else q
    fits = f" AND TRY_CAST({q} AS {cast}) IS NOT NULL" if cast else ""
    label = _D.literal('column "' + c + '": ')
    return (f"CASE WHEN {q} IS NULL OR (regexp_full_match({q}, '{INT_TEXT}'){fits}) THEN {value} "
            f"ELSE error({label} || {q} || {_D.literal(' is not a whole number' + (' that fits ' + cast if cast else ''))}) END")


def strict_select(data: DataFile, source: str, types: dict[str, str]) -> str:
    """`SELECT <the file's columns> FROM <its reader>`, typed by `types` (the table's DuckDB types),
    where a value that is not a whole number fails the load instead of being rounded into a
    whole-number column."""
    if data.format == "parquet":  # typed by its writer: a Parquet DOUBLE column is not text
        return f"SELECT {', '.join(_D.q(c) for c in data.columns)} FROM {reader_sql(data, source, types)}"
    whole = whole_number_columns(data, types)
    exprs = [_checked(c, types[c]) if c in whole else _D.q(c) for c in data.columns]
    read = {c: ("VARCHAR" if c in whole else types[c]) for c in data.columns}
    return f"SELECT {', '.join(exprs)} FROM {reader_sql(data, source, read)}"


def json_fields(path: str, data: DataFile) -> list[str]:
    """The fields of the records, as DuckDB's JSON reader finds them in its sample (the first
    20,480 records: https://duckdb.org/docs/stable/data/json/loading_json), not just the first."""
    fmt = "newline_delimited" if data.format == "jsonl" else "array"
    comp = ", compression = 'gzip'" if data.compression == "gzip" else ""
    con = duckdb.connect()
    try:
        rel = con.execute(f"DESCRIBE SELECT * FROM read_json({_D.literal(path)}, format = '{fmt}', "
                          f"hive_partitioning = false{comp})")
        names = [r[0] for r in rel.fetchall()]
    except duckdb.Error as exc:
        raise map_duckdb_error(exc, data, "reading the file") from None
    finally:
        con.close()
    return check_columns(names, source="records")


def convert_to_csv(path: str, data: DataFile, out: str, *, null: str = "", whole: set[str] = frozenset(),
                   what: str = "loading", threads: int | None = None) -> None:
    """Any input -> CSV at `out` (header, '\\n', UTF-8, no BOM) by DuckDB's strict readers:
    streaming, every column read as text so values reach the destination unchanged and are
    checked there. `null`: how NULL is written. `whole`: columns that must hold whole numbers
    (checked here: MySQL's LOAD DATA would round '2.5')."""
    cols = ", ".join(_checked(c, None) + f" AS {_D.q(c)}" if c in whole else _D.q(c) for c in data.columns)
    reader = reader_sql(data, path, {c: "VARCHAR" for c in data.columns})
    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.execute(f"COPY (SELECT {cols} FROM {reader}) TO {_D.literal(out)} "
                    f"(FORMAT csv, HEADER true, NULLSTR {_D.literal(null)})")
    except duckdb.Error as exc:
        raise map_duckdb_error(exc, data, what) from None
    finally:
        con.close()


def map_duckdb_error(exc: BaseException, data: DataFile | None = None, what: str = "loading", *,
                     opening: bool = False) -> ShipyardError:
    """DuckDB errors by class. An IOException is transient only when opening the warehouse (the
    file is locked by another process); while a plan runs it comes from reading the user's file
    (a truncated or fake gzip stream), which is the file's fault: retrying cannot help."""
    # The file's path (a temp copy, or the bucket folder) is noise to the reader of a report.
    text = re.sub(r' in file "[^"]*"', "", str(exc))
    first = text.split("\n")[0].strip()
    if isinstance(exc, (duckdb.TransactionException, duckdb.InterruptException, duckdb.OutOfMemoryException)) or (
            opening and isinstance(exc, duckdb.IOException)):
        # A write-write conflict, the file locked by another process, memory: try again later.
        return TransientError(f"{what}: {first}; will retry")
    where = duck_where(text, data)
    m = _NOT_WHOLE.search(text)
    if m and where is None:  # strict_select's own check: the column and the value, not the line
        where = {"column_name": m.group(1)}
        if data is not None and data.column_number(m.group(1)):
            where["column"] = data.column_number(m.group(1))
        return InputError(f"{what}: the value {m.group(2)!r} of column {m.group(1)!r} is not a whole number"
                          + (f" that fits {m.group(3)}" if m.group(3) else ""),
                          hint="fix the value so it fits the column's whole-number type (it is never rounded)",
                          where=where)
    if isinstance(exc, duckdb.ConversionException):
        hint = "fix the value at that line and column so it fits the column's type"
    elif isinstance(exc, duckdb.ConstraintException):
        hint = "the row breaks a constraint (NOT NULL, primary key): fix or remove it"
    elif isinstance(exc, duckdb.IOException):
        hint = "the file could not be read: check that it is complete and that a .gz file really is gzip"
    elif "JSON" in text:
        hint = "fix the JSON at that line: one object per line (.jsonl) or one array of objects (.json)"
    elif "CSV Error" in text or "unicode" in text.lower():
        hint = ("save the file as UTF-8 CSV: a header row, ',' between fields, '\"' around fields with commas "
                "or line breaks, the same number of fields on every line (or describe the table's files "
                "with input_options in its create spec)")
    else:
        hint = "see the database's message"
    detail = first
    if "Original Line" in text or "Expected Number of Columns" in text or "unterminated quote" in text:
        reason = [ln for ln in text.split("\n")[1:6] if ln.strip() and not ln.startswith("Original Line")]
        detail = first + (": " + reason[0] if reason else "")
    return InputError(f"{what}: {detail}", hint=hint, where=where)


def duck_where(text: str, data: DataFile | None) -> dict[str, Any] | None:
    m = _DUCK_LINE.search(text)
    if not m:
        return None
    # DuckDB reads the user's file itself: its line numbers are the file's.
    where: dict[str, Any] = {"line": int(m.group(1))}
    c = re.search(r'converting column "([^"]+)"', text)
    if c:
        where["column_name"] = c.group(1)
        if data is not None and data.column_number(c.group(1)):
            where["column"] = data.column_number(c.group(1))
    return where
