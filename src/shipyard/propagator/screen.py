"""Bad rows set aside: a table's `max_bad_rows` (issue 17, item 5).

`screen_file` reads a data file once with DuckDB, every value as text, and sorts its rows into
the good ones (written as a plain UTF-8 CSV the engine then loads as usual) and the bad ones, each
with its line and reason:
- rows DuckDB's strict CSV reader cannot read (a short or long row, a stray quote, a bad byte),
  from its rejects table (https://duckdb.org/docs/stable/data/csv/reading_faulty_csv_files);
- values that do not fit the destination column's type, by the checks below. They follow what
  PostgreSQL and MySQL accept in strict mode, not DuckDB's casts, which are lenient: DuckDB reads
  '1.5', '1e3' and '0x10' into an INTEGER column as 2, 1000 and 16.

More bad rows than `max_bad_rows` fail the whole file, as without the option. What the engine
still refuses after the checks (NOT NULL, a key, a foreign key) fails the whole file too.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field

import duckdb

from shipyard.errors import InputError
from shipyard.propagator.datafile import DataFile
from shipyard.propagator.dialects.duckdb import DuckDBDialect
from shipyard.propagator.duckdb_reader import INT_TEXT, map_duckdb_error, reader_sql, whole_type
from shipyard.propagator.specs import InputOptions

_D = DuckDBDialect()
_NUMERIC = r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*"
_BOOL = ("true", "false", "t", "f", "1", "0")  # what every engine's load takes as a boolean
_TYPE = re.compile(r"^\s*([a-z0-9 ]+?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*(unsigned)?\s*$")
MAX_SHOWN = 5  # bad rows named in the error when there are too many
MAX_LISTED = 1_000_001  # unreadable rows listed at most (max_bad_rows is at most 1,000,000)


@dataclass
class Reject:
    """One bad row: where it is in the file, which column, why, and the line itself when known."""

    line: int | None
    record: int | None
    column: str | None
    reason: str
    text: str | None = None


@dataclass
class Screened:
    rows: int  # good rows written
    rejects: list[Reject] = field(default_factory=list)

    def rejects_csv(self) -> bytes:
        """`failed/<name>.rejects.csv`: line (or record, for JSON / Parquet), column, reason, row."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["line", "record", "column", "reason", "row"])
        for r in self.rejects:
            w.writerow([r.line or "", r.record or "", r.column or "", r.reason, (r.text or "").rstrip("\r\n")])
        return buf.getvalue().encode()


def value_check(expr: str, type_text: str) -> tuple[str, str] | None:
    """(SQL true when the text `expr` does not fit `type_text`, the reason) for a destination
    column type as the engine describes it (`integer`, `int(11)`, `character varying(50)`,
    `DECIMAL(12,2)`, `tinyint(1)`...); None when any text fits (or the type is not one we check)."""
    text = type_text.lower().replace("without time zone", "").replace("with time zone", " tz")
    m = _TYPE.match(re.sub(r"\s+", " ", text))
    if not m:
        return None
    name, n1, n2 = m.group(1).strip(), m.group(2), m.group(3)
    if name in ("boolean", "bool") or (name == "tinyint" and n1 == "1"):
        return (f"lower(trim({expr})) NOT IN {tuple(_BOOL)}", "not a boolean (true/false, t/f, 1/0)")
    if (duck := whole_type(type_text)) is not None:
        return (f"(NOT regexp_full_match({expr}, '{INT_TEXT}') OR TRY_CAST({expr} AS {duck}) IS NULL)",
                f"not a whole number that fits {type_text}")
    if name in ("numeric", "decimal"):
        bound = f" OR TRY_CAST({expr} AS DECIMAL({n1}, {n2 or 0})) IS NULL" if n1 and int(n1) <= 38 else ""
        return (f"(NOT regexp_full_match({expr}, '{_NUMERIC}'){bound})", f"not a number that fits {type_text}")
    if name in ("double precision", "double", "float8", "real", "float4", "float"):
        return (f"TRY_CAST({expr} AS DOUBLE) IS NULL", "not a number")
    if name == "date":
        return (f"TRY_CAST({expr} AS DATE) IS NULL", "not a date (YYYY-MM-DD)")
    if name in ("timestamp", "datetime", "timestamp tz", "timestamptz"):
        return (f"TRY_CAST({expr} AS TIMESTAMP) IS NULL", "not a timestamp (YYYY-MM-DD HH:MM:SS)")
    if name in ("character varying", "varchar", "character", "char", "nvarchar", "nchar") and n1:
        return (f"length({expr}) > {int(n1)}", f"longer than {n1} characters")
    return None


def screen_file(path: str, data: DataFile, types: dict[str, str], out: str, *, null: str,
                max_bad: int) -> Screened:
    """Write the good rows of the local file at `path` to `out` (header, ',', '"', UTF-8; NULL
    written as `null`) and return the bad ones; more than `max_bad` of them raise InputError."""
    con = duckdb.connect()
    try:
        con.execute("SET threads = 1")  # file order: row numbers follow the lines
        reader = reader_sql(data, path, {c: "VARCHAR" for c in data.columns})
        if data.format == "csv":
            # The rows the reader cannot read go to its rejects table instead of failing the read; a
            # quoted empty field stays an empty string where the null string is the empty field.
            extra = ", store_rejects = true, rejects_table = 'shipyard_rj', rejects_scan = 'shipyard_rs'"
            if not data.options.null:
                extra += ", allow_quoted_nulls = false"
            reader = reader[:-1] + extra + ")"
        cols = ", ".join(_D.q(c) for c in data.columns)
        # Parquet columns come typed by the file's writer: as text too, for the same checks.
        texts = ", ".join(f"CAST({_D.q(c)} AS VARCHAR) AS {_D.q(c)}" for c in data.columns) \
            if data.format == "parquet" else cols
        try:
            con.execute(f"CREATE TEMP TABLE r AS SELECT {texts} FROM {reader}")
        except duckdb.Error as exc:
            raise map_duckdb_error(exc, data) from None
        # Counted in SQL first: a file of millions of bad rows is refused without listing them.
        unread = con.execute("SELECT count(DISTINCT line) FROM shipyard_rj").fetchone()[0] \
            if data.format == "csv" else 0
        checks = _mark_bad(con, data, types)
        total = int(unread) + con.execute("SELECT count(*) FROM bad").fetchone()[0]
        over = total > max_bad
        rejects = _structural(con, path, MAX_LISTED) if unread else []
        rejects += _bad_values(con, data, checks, rejects, MAX_SHOWN if over else None)
        for r in rejects:
            if r.line:
                r.record = None  # a CSV row is named by its line only
        if over:
            first = sorted(rejects, key=lambda r: (r.line or 0, r.record or 0))[:MAX_SHOWN]
            shown = "; ".join(f"{'line ' + str(r.line) if r.line else 'record ' + str(r.record)}"
                              f"{', column ' + repr(r.column) if r.column else ''}: {r.reason}" for r in first)
            raise InputError(f"{total} bad rows, more than the table's max_bad_rows ({max_bad}): {shown}",
                             hint="fix those rows, or raise input_options.max_bad_rows with a schema/update "
                                  "\"options\" spec", where=_where(first[0], data))
        keep = "" if not rejects else " WHERE rowid NOT IN (SELECT n FROM bad)"
        con.execute(f"COPY (SELECT {cols} FROM r{keep}) TO {_D.literal(out)} "
                    f"(FORMAT csv, HEADER true, NULLSTR {_D.literal(null)})")
        good = con.execute(f"SELECT count(*) FROM r{keep}").fetchone()[0]
        return Screened(int(good), sorted(rejects, key=lambda r: (r.line or 0, r.record or 0)))
    finally:
        con.close()


def _structural(con: duckdb.DuckDBPyConnection, path: str, limit: int) -> list[Reject]:
    """Rows the strict CSV reader could not read, one per row (its first error). DuckDB numbers
    them by record (a quoted line break does not count); their line in the file comes from the
    byte where the row starts. `record` keeps DuckDB's number, for placing the other bad rows."""
    rows = con.execute("SELECT line, min(line_byte_position), any_value(column_name ORDER BY column_idx), "
                       "any_value(error_message ORDER BY column_idx), any_value(csv_line) "
                       f"FROM shipyard_rj GROUP BY line ORDER BY line LIMIT {int(limit)}").fetchall()
    lines = _lines_at(path, [int(pos or 0) for _, pos, *_ in rows])
    return [Reject(lines[i], int(rec), col, msg.split("\n")[0], text)
            for i, (rec, _, col, msg, text) in enumerate(rows)]


def _lines_at(path: str, offsets: list[int]) -> list[int]:
    """The line (1-based) on which each byte offset of the file falls."""
    out, want = [], sorted(set(offsets))
    found: dict[int, int] = {}
    line, pos = 1, 0
    with open(path, "rb") as f:
        for target in want:
            while pos < target:
                chunk = f.read(min(1 << 20, target - pos))
                if not chunk:
                    break
                line += chunk.count(b"\n")
                pos += len(chunk)
            found[target] = line
    for o in offsets:
        out.append(found[o])
    return out


def _mark_bad(con: duckdb.DuckDBPyConnection, data: DataFile,
              types: dict[str, str]) -> list[tuple[str, tuple[str, str]]]:
    """Table `bad` (n: the row, k: which check failed first) of the rows with a value that does
    not fit its column's type; returns the checks, (column, (condition, reason))."""
    checks = [(c, chk) for c in data.columns if c in types and (chk := value_check(_D.q(c), types[c])) is not None]
    if not checks:
        con.execute("CREATE TEMP TABLE bad AS SELECT NULL::BIGINT AS n, NULL::INTEGER AS k WHERE false")
        return []
    case = " ".join(f"WHEN {_D.q(c)} IS NOT NULL AND {cond} THEN {i}" for i, (c, (cond, _)) in enumerate(checks))
    con.execute(f"CREATE TEMP TABLE bad AS SELECT rowid AS n, CASE {case} END AS k FROM r WHERE (CASE {case} END) IS NOT NULL")
    return checks


def _bad_values(con: duckdb.DuckDBPyConnection, data: DataFile, checks: list[tuple[str, tuple[str, str]]],
                structural: list[Reject], limit: int | None) -> list[Reject]:
    """The rows of `bad` as Rejects (the first `limit` of them), with their line or record."""
    found = con.execute("SELECT n, k FROM bad ORDER BY n" + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
    if not found:
        return []
    cols = ", ".join(_D.q(c) for c in data.columns)
    if data.format != "csv":
        texts = _texts(con, [n for n, _ in found], cols)
        lines = data.format == "jsonl"  # one record per line
        return [Reject(n + 1 if lines else None, None if lines else n + 1, checks[k][0], checks[k][1][1], texts.get(n))
                for n, k in found]
    # A CSV row's line: the header, the lines of the readable rows before it (a quoted value can
    # hold line breaks) and the unreadable rows before it, which are not in `r`.
    newlines = " + ".join(f"coalesce(length({_D.q(c)}) - length(replace({_D.q(c)}, chr(10), '')), 0)"
                          for c in data.columns)
    starts = dict(con.execute(f"SELECT n, s FROM (SELECT rowid AS n, sum(1 + {newlines}) OVER (ORDER BY rowid) "
                              f"- (1 + {newlines}) AS s FROM r) WHERE n IN (SELECT n FROM bad)").fetchall())
    first = 2 if data.options.header else 1
    unread = sorted(structural, key=lambda r: r.record or 0)
    texts = _texts(con, [n for n, _ in found], cols)
    out, u, skipped = [], 0, 0
    for n, k in found:  # in file order, so the unread rows before each one only add up
        record = first + n + u  # DuckDB's record numbers count the unreadable rows
        while u < len(unread) and (unread[u].record or 0) <= record:
            skipped += 1 + (unread[u].text or "").rstrip("\r\n").count("\n")
            u, record = u + 1, record + 1
        out.append(Reject(first + int(starts[n]) + skipped, None, checks[k][0], checks[k][1][1], texts.get(n)))
    return out


def _texts(con: duckdb.DuckDBPyConnection, rows: list[int], cols: str) -> dict[int, str]:
    """The bad rows as CSV text, for the rejects file."""
    wanted = ", ".join(str(n) for n in rows[:10_000])
    out = {}
    for n, *values in con.execute(f"SELECT rowid, {cols} FROM r WHERE rowid IN ({wanted})").fetchall():
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(["" if v is None else v for v in values])
        out[n] = buf.getvalue()
    return out


def _where(r: Reject, data: DataFile) -> dict[str, object]:
    where: dict[str, object] = {"line": r.line} if r.line else {"record": r.record}
    if r.column:
        where["column_name"] = r.column
        if data.column_number(r.column):
            where["column"] = data.column_number(r.column)
    return where


def screened_data(data: DataFile) -> DataFile:
    """What the engine reads after screening: a plain UTF-8 CSV with a header, default options."""
    return DataFile(data.key, "csv", None, list(data.columns), InputOptions())


def with_line(exc: InputError, path: str, data: DataFile) -> InputError:
    """A whole-number check's error (column and value, from a reader that counts no lines) with the
    line of the first such value in the file, found by screening that one column."""
    where = dict(exc.details.get("where") or {})
    column = where.get("column_name")
    if not column or where.get("line") or where.get("record"):
        return exc
    fits = re.search(r"that fits (\w+)", exc.message)
    try:
        screen_file(path, data, {column: fits.group(1) if fits else "BIGINT"}, os.devnull, null="", max_bad=0)
    except InputError as found:
        where.update({k: v for k, v in (found.details.get("where") or {}).items() if k in ("line", "record")})
        return InputError(exc.message, hint=exc.hint, where=where)
    return exc
