"""Typing a batch in one pass: types from a sample, proved on every row by a strict read.

DuckDB's detection over every row costs more CPU than the whole COPY it precedes (a type tree
per record, every string tried as a date). This module skips it when it can:

1. each staged part's types are detected over its first SAMPLE_ROWS rows (on the staging
   pool; records concatenated with no delimiter are first rewritten one per line), typecheck
   merges them with the lake's schema as usual, and the part is appended to one batch file
   (Joined) by the same worker;
2. the file's reserved first line takes a *probe*: a record that makes DuckDB's detection
   (sample_size=1, so only the probe is sampled) give exactly the types we want, plus a
   marker key so the probe's own row is dropped. Numbers and booleans are probed with `{}`,
   so they come out as JSON text (`2.5`, `true`, `"12"`) and are checked in SQL before the
   cast: DuckDB's reader would round 2.5 into a BIGINT and read true as 1. Dates, times and
   UUIDs are probed as text and cast only in their ISO shape: the samples' detection may
   have used another format (26-11-30 read as %y-%m-%d), which a probe cannot carry;
3. the file is read once, with auto-detection still on: DuckDB then refuses a key that the
   probe does not have, at any depth ("has unknown key"), and an object where a scalar was
   probed or the reverse; the SQL checks refuse a number, boolean, date, time or UUID that
   does not fit its column.

Any refusal raises NotStrict and the runner types the batch the old way (detection over every
row, then the typed read), which widens the schema or names the file and line: a batch either
loads exactly as full detection would type it, or goes the slow way. Why one file: DuckDB only
refuses unknown keys when it reads a single file (tested in tests/lake/test_strict.py).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any, Callable

import duckdb

from shipyard.lake import schema as sch
from shipyard.lake.sql import lit, q
from shipyard.lake.typecheck import detector

SAMPLE_ROWS = 1024  # rows of each staged part whose types are detected up front
PROBE_MAX = 1 << 20  # the probe's reserved first line; a wider schema is typed the old way

_CHECKED = ("BIGINT", "UBIGINT", "DOUBLE", "BOOLEAN", sch.NULL)  # read as JSON text, checked
# Read as text and cast only in their ISO shape: DuckDB's detection may have picked another
# format from the samples ("%y-%m-%d": 26-11-30 is 2026-11-30), which the probe cannot carry;
# a value of any other shape sends the batch the old way.
_SECONDS = "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,6})?"
_TEXT_CHECKED = {"DATE": "[0-9]{4}-[0-9]{2}-[0-9]{2}", "TIMESTAMP": _SECONDS,
                 "TIMESTAMP WITH TIME ZONE": _SECONDS + "(Z|[-+][0-9]{2}(:?[0-9]{2})?)",
                 "UUID": "[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"}
_INT = "-?(0|[1-9][0-9]*)"
_NUM = "-?(0|[1-9][0-9]*)([.][0-9]+)?([eE][-+]?[0-9]+)?"
FAILED = "shipyard: value does not fit its sampled type"
FAILED_NULL = "shipyard: a value where every sampled row had null"
FAILED_TEXT = "shipyard: a text not in the ISO shape of its sampled type"


class NotStrict(Exception):
    """The one-pass typing cannot vouch for this batch; type it over every row instead."""


_UNKNOWN_KEY = re.compile(r'has unknown key "((?:[^"\\]|\\.){0,80})')


def refusal(message: str) -> str:
    """Why DuckDB refused the strict read, in our words: its own message quotes the record."""
    if m := _UNKNOWN_KEY.search(message):
        return f"a key the sampled rows do not have ({m.group(1)!r})"
    if FAILED in message:
        return "a number or boolean that does not fit its sampled type"
    if FAILED_NULL in message:
        return "a value in a key that is null in every sampled row"
    if FAILED_TEXT in message:
        return "a date, time or UUID not in the ISO shape (or not the type) of its sampled rows"
    if message.startswith("Conversion Error"):
        return "a value out of the range of its sampled type"
    if "Malformed JSON" in message:
        return "records that are not one JSON object per line"
    if "Expected OBJECT" in message or "Expected ARRAY" in message or "cast value to numerical" in message:
        return "a value of another kind than its sampled type"
    return "the strict read failed (--debug shows DuckDB's message)"


def one_per_line(con: Any, path: str) -> None:
    """Records concatenated with no delimiter (Firehose's default: `}{`) rewritten one per
    line, so the strict read can take them; DuckDB splits them (read_json_objects knows string
    boundaries) and re-serialises each. Only the first 64 KiB are looked at: a writer delimits
    its records one way throughout (a file that mixes both fails the strict read, and DuckDB's
    format='auto' of the old way as well), and a `}{` inside a string only costs a rewrite. A symlink to a local raw file is
    replaced, never its target."""
    with open(path, "rb") as f:
        if b"}{" not in f.read(1 << 16):
            return
    tmp = f"{path}.lines"
    try:
        con.execute(f"COPY (SELECT json(json) FROM read_json_objects({lit(path)}, format='auto')) TO {lit(tmp)} "
                    "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x01')")
    except duckdb.Error:  # not JSON after all: the sample says so, and the old way names the line
        return
    os.replace(tmp, path)


def sampler(con: Any, joined: Joined) -> Callable[[str], Any]:
    """What the staging pool runs on each part in one-pass mode: records one per line, the
    types of its first SAMPLE_ROWS rows (typecheck.detector), then the part joins the batch."""
    detect = detector(con, SAMPLE_ROWS)

    def run(path: str) -> Any:
        cur = con.cursor()
        try:
            one_per_line(cur, path)
        finally:
            cur.close()
        found = detect(path)
        joined.add(path)
        return found

    return run


def read_types(raw_schema: dict[str, Any], found: list[dict[str, Any]]) -> dict[str, Any]:
    """The types the strict read must give: the merged schema, plus the top-level keys that
    were only ever null in the samples (they must stay null everywhere, or full detection
    would have typed them)."""
    out = dict(raw_schema)
    for f in found:
        for k, t in f.items():
            if k not in out and t == sch.NULL:
                out[k] = sch.NULL
    return out


def _probe_value(t: Any) -> Any:
    if isinstance(t, dict):
        if "struct" in t:
            if not t["struct"]:
                raise NotStrict("an empty struct")
            return {k: _probe_value(v) for k, v in t["struct"].items()}
        if "list" in t:
            return [_probe_value(t["list"])]
        raise NotStrict("a MAP column")
    if t in _CHECKED:
        return {}
    if t == "VARCHAR" or t in _TEXT_CHECKED:
        return "x"
    raise NotStrict(f"a {t} column")


def probe_line(types: dict[str, Any], marker: str) -> bytes:
    rec = {k: _probe_value(t) for k, t in types.items()}
    rec[marker] = True
    line = json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    if len(line) > PROBE_MAX:
        raise NotStrict("a schema wider than the probe allows")
    return line


def new_marker(taken: set[str]) -> str:
    while (m := f"__shipyard_probe_{secrets.token_hex(8)}") in taken:
        pass
    return m


class Joined:
    """The batch as one file: a reserved first line (the probe, written once the samples are
    typed), then every part, appended by the staging worker that sampled it, in any order (one
    strict read has no file order anyway), and deleted once copied: the disk does not hold the
    batch twice (a fallback stages the raw objects again)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._end = PROBE_MAX + 1
        self._lock = threading.Lock()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _pwrite_all(fd, b" " * PROBE_MAX + b"\n", 0)
        finally:
            os.close(fd)

    def add(self, part: str) -> None:
        with open(part, "rb") as src:
            size = os.fstat(src.fileno()).st_size
            if size:
                src.seek(size - 1)
                newline = src.read(1) != b"\n"
                with self._lock:  # reserve the range; the copy itself runs in parallel
                    at, self._end = self._end, self._end + size + newline
                fd = os.open(self.path, os.O_WRONLY)
                try:
                    _copy_at(src.fileno(), fd, size, at)
                    if newline:
                        _pwrite_all(fd, b"\n", at + size)
                finally:
                    os.close(fd)
        if not os.path.islink(part):
            os.unlink(part)

    def write_probe(self, probe: bytes) -> None:
        """The probe line over the reserved first line (padded with spaces)."""
        fd = os.open(self.path, os.O_WRONLY)
        try:
            _pwrite_all(fd, probe.rstrip(b"\n").ljust(PROBE_MAX) + b"\n", 0)
        finally:
            os.close(fd)


def _copy_at(src: int, dst: int, size: int, at: int) -> None:
    """`size` bytes of `src` into `dst` at offset `at`: in the kernel when it can (same
    filesystem), else through a buffer (a local raw zone on another filesystem: EXDEV)."""
    done = 0
    try:
        while done < size and (n := os.copy_file_range(src, dst, size - done, done, at + done)):
            done += n
    except OSError:
        pass
    while done < size:
        block = os.pread(src, min(1 << 20, size - done), done)
        if not block:
            raise OSError(f"a staged part shrank while it was copied ({done} of {size} bytes)")
        _pwrite_all(dst, block, at + done)
        done += len(block)


def _pwrite_all(fd: int, data: bytes, at: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, at)
        view, at = view[n:], at + n


def _detected(t: Any) -> str:
    """The DuckDB type the probe makes detection give for kept type `t`."""
    if isinstance(t, dict):
        if "struct" in t:
            return "STRUCT(" + ", ".join(f"{q(n)} {_detected(c)}" for n, c in t["struct"].items()) + ")"
        return _detected(t["list"]) + "[]"
    return "JSON" if t in _CHECKED else "VARCHAR" if t in _TEXT_CHECKED else t


def expected(types: dict[str, Any]) -> list[str]:
    """The column types DuckDB must detect from the probe (compared before reading)."""
    return [str(duckdb.sqltype(_detected(t))) for t in types.values()]


def _needs(t: Any) -> bool:
    if isinstance(t, dict):
        return any(_needs(c) for c in t["struct"].values()) if "struct" in t else _needs(t["list"])
    return t in _CHECKED or t in _TEXT_CHECKED


def _cast(expr: str, t: Any, depth: int = 0) -> str:
    """SQL for the value at `expr` (as read from the probed file) in its kept type; error()
    for a value that does not fit."""
    if not _needs(t):
        return expr
    if isinstance(t, dict):
        if "list" in t:
            x = f"x{depth}"
            return f"list_transform({expr}, lambda {x}: {_cast(x, t['list'], depth + 1)})"
        fields = ", ".join(f"{q(n)} := {_cast(f'{expr}.{q(n)}', c, depth)}" for n, c in t["struct"].items())
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE struct_pack({fields}) END"
    if t in _TEXT_CHECKED:
        return (f"CASE WHEN {expr} IS NULL THEN NULL WHEN regexp_full_match({expr}, {lit(_TEXT_CHECKED[t])}) "
                f"THEN CAST({expr} AS {t}) ELSE error({lit(FAILED_TEXT)}) END")
    text = f"CAST({expr} AS VARCHAR)"
    if t == sch.NULL:  # null in every sampled row: it must be null in every row (read as text)
        return f"CASE WHEN {expr} IS NULL THEN CAST(NULL AS VARCHAR) ELSE error({lit(FAILED_NULL)}) END"
    if t == "BOOLEAN":
        ok, value = f"{text} IN ('true', 'false')", f"{text} = 'true'"
    else:
        ok = f"regexp_full_match({text}, {lit(_NUM if t == 'DOUBLE' else _INT)})"
        value = f"CAST({text} AS {t})"
    return f"CASE WHEN {expr} IS NULL THEN NULL WHEN {ok} THEN {value} ELSE error({lit(FAILED)}) END"


def read_sql(path: str) -> str:
    # newline_delimited: one record per line (anything else fails the read: the old way reads
    # it with format='auto'); sample_size=1: only the probe is sampled.
    return (f"read_json({lit(path)}, format='newline_delimited', records=true, "
            f"map_inference_threshold=-1, sample_size=1)")


def select_sql(types: dict[str, Any], marker: str, path: str, extra: str) -> str:
    """The batch's rows, each column in its kept type (NULL-only keys left out) and `extra`;
    the probe's row dropped."""
    cols = ", ".join([f"{_cast(q(n), t)} AS {q(n)}" for n, t in types.items() if t != sch.NULL] + [extra])
    nulls = "".join(f" AND {_cast(q(n), t)} IS NULL" for n, t in types.items() if t == sch.NULL)
    return f"SELECT {cols} FROM {read_sql(path)} WHERE {q(marker)} IS NULL{nulls}"
