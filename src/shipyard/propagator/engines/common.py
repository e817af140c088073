"""What every engine shares: the data source, crash points, and locating errors in a file."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Protocol

from shipyard.propagator.inputs import CHUNK, DataFile, SkipBOM, iter_chunks, open_decoded
from shipyard.propagator.plan import Plan, TableInfo
from shipyard.store import ObjectStore


class Engine(Protocol):
    """Runs plans against one destination database."""

    def describe(self, database: str, table: str) -> TableInfo | None: ...

    def ledger_rows(self, database: str, key_hash: str) -> int | None:
        """Rows recorded for this object version, or None if it was never loaded."""
        ...

    def run(self, plan: Plan, source: "Source | None") -> "RunResult": ...

    def close(self) -> None: ...


class RunResult:
    def __init__(self, rows: int, duplicate: bool = False) -> None:
        self.rows = rows
        self.duplicate = duplicate


def crash_point(name: str) -> None:
    """Fault injection for the crash tests: `SHIPYARD_TEST_CRASH_AT=<name>` kills the process here
    the way `kill -9` would (no cleanup, no rollback from our side); unset in production."""
    if os.environ.get("SHIPYARD_TEST_CRASH_AT") == name:
        os._exit(137)


def spool_dir() -> Path:
    """Where temp copies of files live: one folder, so a killed loader's leftovers can be found."""
    d = Path(tempfile.gettempdir()) / "shipyard-spool"
    d.mkdir(exist_ok=True)
    return d


def spool_file(suffix: str) -> tuple[int, str]:
    """A new temp file (fd, path) named after this process, for `sweep_spool`."""
    return tempfile.mkstemp(prefix=f"{os.getpid()}-", suffix=suffix, dir=spool_dir())


def sweep_spool() -> int:
    """Delete temp files left by loaders that died (SIGKILL, OOM, a Lambda timeout) without
    cleaning up: a file whose process no longer exists. Returns how many went."""
    gone = 0
    for f in spool_dir().iterdir():
        pid = f.name.split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)  # signal 0: does the process exist?
            continue
        except ProcessLookupError:
            pass
        except PermissionError:  # another user's live process
            continue
        f.unlink(missing_ok=True)
        gone += 1
    return gone


def spooled_copy(store: ObjectStore, key: str, suffix: str) -> str:
    """A temp file holding the object's bytes (for readers that need a seekable local file)."""
    fd, path = spool_file(suffix)
    with os.fdopen(fd, "wb") as out, store.open(key) as src:
        shutil.copyfileobj(src, out, CHUNK)
    return path


class Source:
    """One data file, offered the way each engine reads best (a local path or a CSV stream)."""

    def __init__(self, store: ObjectStore, key: str, data: DataFile) -> None:
        self.store = store
        self.key = key
        self.data = data
        self._temps: list[str] = [data.spooled] if data.spooled else []

    def uri(self) -> str:
        return self.store.uri(self.key)

    def local_file(self) -> str:
        """The object as a local file with its own suffix (DuckDB reads it, gzip and all)."""
        p = self.store.local_path(self.key)
        if p is not None:
            return str(p)
        if self.data.spooled:
            return self.data.spooled
        name = self.key.rsplit("/", 1)[-1]
        suffix = "".join(Path(name).suffixes[-2:]) if name.lower().endswith(".gz") else Path(name).suffix
        path = spooled_copy(self.store, self.key, suffix)
        self._temps.append(path)
        return path

    def csv_chunks(self) -> Iterator[bytes]:
        """The rows as UTF-8 CSV with a header: decompressed, BOM dropped, JSON/Parquet converted."""
        if self.data.format == "csv":
            with SkipBOM(open_decoded(self.store, self.key, self.data.compression)) as f:  # type: ignore[arg-type]
                yield from iter_chunks(f)
            return
        path = self.converted_csv()
        with open(path, "rb") as f:
            yield from iter_chunks(f)

    def plain_csv_file(self) -> str:
        """A local, strictly checked UTF-8 CSV file (MySQL's LOAD DATA LOCAL reads it).

        LOAD DATA is lenient by design (a short row, a stray quote or a bad byte load as a guess),
        so the file first goes through DuckDB's strict reader: malformed CSV and non-UTF-8 fail
        here with their line; values are then checked by MySQL in strict mode."""
        # NULL is written as the bare word NULL, which LOAD DATA reads as NULL when fields may be
        # enclosed (a value "NULL" is quoted, so it stays a string):
        # https://dev.mysql.com/doc/refman/8.0/en/load-data.html#load-data-null-handling
        return self.converted_csv(null="NULL")

    def converted_csv(self, null: str = "") -> str:
        """Any input -> a temp CSV (header, '\\n', UTF-8, no BOM) by DuckDB's strict readers:
        streaming, every column read as text so values reach the destination unchanged and
        are checked there."""
        import duckdb

        from shipyard.propagator.dialects import get_dialect
        from shipyard.propagator.plan import _reader

        d = get_dialect("duckdb")
        src = self.local_file()
        fd, path = spool_file(".csv")
        os.close(fd)
        self._temps.append(path)
        info = TableInfo({c: "VARCHAR" for c in self.data.columns})
        cols = ", ".join(d.q(c) for c in self.data.columns)
        con = duckdb.connect()
        try:
            con.execute(f"COPY (SELECT {cols} FROM {_reader(d, self.data, src, info)}) TO {d.literal(path)} "
                        f"(FORMAT csv, HEADER true, NULLSTR {d.literal(null)})")
        except duckdb.Error as exc:
            from shipyard.propagator.engines.duckdb import map_duckdb_error

            raise map_duckdb_error(exc, self.data) from None
        finally:
            con.close()
        return path

    def close(self) -> None:
        for p in self._temps:
            try:
                os.unlink(p)
            except OSError:
                pass
        self._temps.clear()


_PG_CONTEXT = re.compile(r"line (\d+)(?:, column (\w+))?")
_DUCK_LINE = re.compile(r"(?:CSV Error on Line: |Line: |in line )(\d+)")
_DUCK_COLUMN = re.compile(r'column "?([A-Za-z_][A-Za-z0-9_]*)"?')


def where_from_text(text: str | None, data: DataFile | None, pattern: re.Pattern[str] = _PG_CONTEXT) -> dict[str, Any] | None:
    """Line and column from an engine's error context, as the file's author counts them."""
    if not text:
        return None
    m = pattern.search(text)
    if not m:
        return None
    where: dict[str, Any] = to_file_position(int(m.group(1)), data)
    col = m.group(2) if m.lastindex and m.lastindex >= 2 else None
    if col:
        where["column_name"] = col
        if data is not None and data.column_number(col):
            where["column"] = data.column_number(col)
    return where


def to_file_position(csv_line: int, data: DataFile | None) -> dict[str, Any]:
    """A line of the CSV an engine read, as the author of the original file counts it: the same
    line for CSV; JSON / Parquet reach the engine as CSV (header on line 1), so line N there is
    JSON line N-1 of a .jsonl file, or record N-1 of a JSON array or Parquet file."""
    if data is None or data.format == "csv":
        return {"line": csv_line}
    if data.format == "jsonl":
        return {"line": csv_line - 1}
    return {"record": csv_line - 1}


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
