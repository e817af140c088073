"""Raw files: which keys are raw events, DuckDB's reader over them, and reading them back by
line on the error path.

Staged raw files are plain JSON (staging.py decompressed them). The bulk path never reads them
in Python (DuckDB does); the line readers here run only to name the file and line of a
problem, and read at most MAX_LINE bytes of any line, so a file of one enormous line cannot
take memory with it.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import date, datetime, time
from typing import IO, Any, Iterator

from shipyard.lake.schema import Type, to_sql
from shipyard.lake.sql import lit, sql_list

# Names writers use while a file is incomplete (hadoop fs -put, many uploaders).
TEMP_SUFFIXES = (".tmp", "._COPYING_", ".partial", ".crdownload")
# The longest line the error-path readers below read (DuckDB's reader has its own limits; a
# bigger maximum_object_size would make it allocate 2x that per thread, so it keeps its default).
MAX_LINE = 64 << 20


def is_raw(key: str) -> bool:
    """Any object but hidden ones (`.x`, `_SUCCESS`, in a `_x/` or `.x/` folder) and temp names:
    raw objects are recognised by content (staging.py), whatever their name (Firehose's keys
    have no extension)."""
    parts = key.split("/")
    if any(p.startswith((".", "_")) for p in parts):
        return False
    return not parts[-1].endswith(TEMP_SUFFIXES)


def open_raw(path: str) -> IO[bytes]:
    return open(path, "rb")


def is_blank(path: str) -> bool:
    """No record at all (an empty or whitespace-only file): nothing to read, nothing wrong."""
    with open_raw(path) as f:
        while chunk := f.read(1 << 16):
            if chunk.strip():
                return False
    return True


def _lines(f: IO[bytes]) -> Iterator[bytes | None]:
    """Lines of at most MAX_LINE bytes; None for a longer one (then stop: memory stays flat)."""
    while line := f.readline(MAX_LINE + 1):
        if len(line) > MAX_LINE:
            yield None
            return
        yield line


def read_json_sql(paths: list[str], columns: dict[str, Any] | None = None,
                  filename: str | None = None, sample: int | None = None) -> str:
    """read_json over raw files: detecting types over every row (columns=None), or over the
    first `sample` rows, or with the given types."""
    # format='auto': JSON lines, or objects concatenated with no delimiter (Firehose), per file.
    # map_inference_threshold=-1: objects stay STRUCTs (Athena/Spark structs), never MAPs.
    opts = "format='auto', records=true, map_inference_threshold=-1"
    if filename:
        opts += f", filename={lit(filename)}"
    if columns is None:
        opts += f", union_by_name=true, sample_size={sample or -1}"
    else:
        cols = "{" + ", ".join(f"{lit(n)}: {lit(to_sql(t))}" for n, t in columns.items()) + "}"
        opts += f", columns={cols}"
    return f"read_json({sql_list(paths)}, {opts})"


# --- Finding the line of a conflict (error path only: plain Python over one file) ----------

def _fits(t: Type, v: Any) -> bool:
    if v is None:
        return True
    if isinstance(t, dict):
        if "struct" in t:
            return isinstance(v, dict) and all(
                _fits(t["struct"][k], x) for k, x in v.items() if k in t["struct"])
        if "list" in t:
            return isinstance(v, list) and all(_fits(t["list"], x) for x in v)
        return isinstance(v, dict) and all(_fits(t["map"][1], x) for x in v.values())
    if t == "VARCHAR":
        return True
    if t in ("BIGINT", "UBIGINT"):
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "DOUBLE" or t.startswith("DECIMAL"):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if t == "BOOLEAN":
        return isinstance(v, bool)
    if not isinstance(v, str):
        return False
    try:
        if t == "DATE":
            date.fromisoformat(v)
        elif t == "TIME":
            time.fromisoformat(v)
        elif t.startswith("TIMESTAMP"):
            datetime.fromisoformat(v.replace(" ", "T", 1))
        elif t == "UUID":
            uuid.UUID(v)
    except ValueError:
        return False
    return True


def _get(record: Any, path: str) -> tuple[bool, Any]:
    """Values at a dotted path ('device.os', 'tags[]'); lists fan out (first misfit wins)."""
    cur = [record]
    for part in path.replace("[]", ".[]").split("."):
        if not part:
            continue
        nxt = []
        for c in cur:
            if part == "[]":
                if isinstance(c, list):
                    nxt.extend(c)
            elif part.startswith("{"):
                if isinstance(c, dict):
                    nxt.extend(c.keys() if part == "{key}" else c.values())
            elif isinstance(c, dict) and part in c:
                nxt.append(c[part])
        cur = nxt
        if not cur:
            return False, None
    return True, cur


_DECODER = json.JSONDecoder()


def _json_lines(f: IO[bytes]) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, record, problem) per record; problem set when it is not JSON. Records
    concatenated on one line with no delimiter (as Firehose writes them) are split."""
    for n, raw in enumerate(_lines(f), 1):
        if raw is None:
            yield n, None, f"a line longer than {MAX_LINE >> 20} MB"
            return
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            yield n, None, f"not UTF-8 text (byte {exc.start + 1})"
            continue
        pos = 0
        while pos < len(line):
            try:
                rec, pos = _DECODER.raw_decode(line, pos)
            except json.JSONDecodeError as exc:
                yield n, None, f"malformed JSON ({exc.msg} at column {exc.colno})"
                break
            except RecursionError:
                yield n, None, "JSON nested too deeply"
                break
            yield n, rec, None
            while pos < len(line) and line[pos].isspace():
                pos += 1


def find_misfit(f: IO[bytes], raw_name: str, kept_type: Type) -> tuple[int, str] | None:
    """First (line number, value) whose raw field `raw_name` (dotted) does not fit `kept_type`."""
    for n, rec, problem in _json_lines(f):
        if problem:
            return n, problem
        found, values = _get(rec, raw_name)
        if not found:
            continue
        for v in values:
            if not _fits(kept_type, v):
                return n, json.dumps(v)[:80]
    return None


def find_malformed(f: IO[bytes]) -> tuple[int, str] | None:
    for n, rec, problem in _json_lines(f):
        if problem:
            return n, problem
        if not isinstance(rec, dict):
            return n, "a JSON line must be an object"
    return None


