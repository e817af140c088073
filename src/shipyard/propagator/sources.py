"""One data file, inspected, and offered the way each engine reads best.

`open_source(store, key, name)` reads what the file holds (format, columns) from its first bytes,
plus DuckDB's sample for JSON; the `Source` then gives an engine a local path (DuckDB), a
strictly checked CSV file (MySQL's LOAD DATA) or a stream of CSV chunks (COPY FROM STDIN), and
removes its temp files on close.

What DuckDB reads is always a local, uncompressed file at a path without glob characters: a
key such as `input/load/a*.csv` or `b[1].csv` is exactly that one file (DuckDB's readers expand
globs in a path), and a .gz file is decompressed through shipyard.streams' bounded reader (a
size cap and an expansion-ratio cap) rather than by DuckDB, which has no such limits.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from shipyard.errors import InputError
from shipyard.propagator.datafile import (
    CHUNK,
    DataFile,
    SkipBOM,
    file_format,
    first_array_record,
    first_json_record,
    inspect_csv,
    iter_chunks,
    open_decoded,
    parquet_columns,
)
from shipyard.propagator.duckdb_reader import convert_to_csv, json_fields, whole_number_columns
from shipyard.propagator.screen import Screened, screen_file, screened_data, with_line
from shipyard.propagator.specs import InputOptions
from shipyard.store import ObjectStore, local_copy, spool_file

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux; Python 3.10+ names it
# Characters a DuckDB reader takes as a glob pattern (https://duckdb.org/docs/stable/sql/functions/pattern_matching#globbing).
GLOB_CHARS = frozenset("*?[]{}")


def suffix_of(name: str) -> str:
    """A file name's data suffix without compression (`.csv` for `x.csv.gz`)."""
    n = name[:-3] if name.lower().endswith(".gz") else name
    return Path(n).suffix


def open_source(store: ObjectStore, key: str, name: str, options: InputOptions | None = None,
                columns: list[str] | None = None) -> "Source":
    """Inspect the file and return it as a Source (close it when done). `options`: the table's
    CSV input options; `columns`: its columns (a CSV without a header holds them in this order)."""
    source = Source(store, key, DataFile(key, *file_format(name), []))
    try:
        source.data = source.inspect(options, columns)
    except BaseException:
        source.close()
        raise
    return source


class Source:
    """One data file, offered the way each engine reads best (a local path or a CSV stream)."""

    def __init__(self, store: ObjectStore, key: str, data: DataFile) -> None:
        self.store = store
        self.key = key
        self.data = data
        self._stack = ExitStack()
        self._local: str | None = None
        self._screened: str | None = None
        self._pipe: tuple[str, threading.Thread, list[BaseException]] | None = None
        self.screened: Screened | None = None

    def inspect(self, options: InputOptions | None = None, columns: list[str] | None = None) -> DataFile:
        """What the file holds. JSON's fields come from DuckDB's sample, Parquet's from its footer:
        both read the local file, which is kept for the load."""
        fmt, comp = self.data.format, self.data.compression
        if fmt == "csv":
            return inspect_csv(self.store, self.key, comp, options, columns)
        if fmt == "jsonl":
            first_json_record(self.store, self.key, comp)
        elif fmt == "json":
            first_array_record(self.store, self.key, comp)
        data = replace(self.data)
        local = self.local_file()
        data.columns = parquet_columns(local) if fmt == "parquet" else json_fields(local, self.local_data)
        return data

    @property
    def local_data(self) -> DataFile:
        """`data` as `local_file()` holds it: uncompressed."""
        return replace(self.data, compression=None)

    def uri(self) -> str:
        return self.store.uri(self.key)

    def local_file(self) -> str:
        """The object as a local, uncompressed file whose path has no glob characters."""
        if self._local is None:
            suffix = suffix_of(self.key.rsplit("/", 1)[-1])
            if self.data.compression:
                self._local = self._temp(suffix)
                with open_decoded(self.store, self.key, self.data.compression) as src, open(self._local, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
            else:
                path = str(self._stack.enter_context(local_copy(self.store, self.key, suffix=suffix)))
                if GLOB_CHARS & set(path):
                    # The reader gets a link with a plain name: the file's own name is never a pattern.
                    link = self._temp(suffix)
                    os.unlink(link)
                    os.symlink(path, link)
                    path = link
                self._local = path
        return self._local

    def screen(self, types: dict[str, str], max_bad: int, *, null: str = "") -> str:
        """Set the bad rows aside (screen.py): from now on the Source offers only the good rows,
        as a plain UTF-8 CSV with a header (NULL written as `null`); `screened` holds the bad
        ones. Returns that file's path."""
        out = self._temp(".csv")
        self.screened = screen_file(self.local_file(), self.local_data, types, out, null=null, max_bad=max_bad)
        self._screened = out
        self.data = screened_data(self.data)
        self._local = out
        return out

    def csv_chunks(self) -> Iterator[bytes]:
        """The rows as CSV: decompressed, BOM dropped, JSON/Parquet converted to UTF-8 CSV with a
        header; a CSV file keeps its input options (COPY is told them: plan/data.py)."""
        if self._screened is not None:
            with open(self._screened, "rb") as f:
                yield from iter_chunks(f)
            return
        if self.data.format == "csv":
            with SkipBOM(open_decoded(self.store, self.key, self.data.compression)) as f:  # type: ignore[arg-type]
                yield from iter_chunks(f)
            return
        with open(self.converted_csv(), "rb") as f:
            yield from iter_chunks(f)

    def plain_csv_file(self, types: dict[str, str] | None = None, what: str = "loading") -> str:
        """A local, strictly checked UTF-8 CSV file (MySQL's LOAD DATA LOCAL reads it).

        LOAD DATA is lenient by design (a short row, a stray quote or a bad byte load as a guess),
        so the file first goes through DuckDB's strict reader: malformed CSV and non-UTF-8 fail
        here with their line; values are then checked by MySQL in strict mode."""
        # NULL is written as the bare word NULL, which LOAD DATA reads as NULL when fields may be
        # enclosed (a value "NULL" is quoted, so it stays a string):
        # https://dev.mysql.com/doc/refman/8.0/en/load-data.html#load-data-null-handling
        if self._screened is not None:
            return self._screened  # written with NULL as the bare word NULL for it
        try:
            whole = whole_number_columns(self.data, types or {}) if self.data.format != "parquet" else set()
            return self.converted_csv(null="NULL", whole=whole, what=what)
        except InputError as exc:
            raise with_line(exc, self.local_file(), self.local_data) from None

    def plain_csv_pipe(self, types: dict[str, str] | None = None, what: str = "loading") -> str:
        """`plain_csv_file`, written into a named pipe while LOAD DATA reads it: DuckDB's strict
        pass overlaps the load instead of running before it. The engine must call `end_pipe()`
        after the load and before its commit: DuckDB's verdict on the file comes from there."""
        if self._screened is not None:
            return self._screened
        src, data = self.local_file(), self.local_data
        whole = whole_number_columns(self.data, types or {}) if self.data.format != "parquet" else set()
        fifo = self._temp(".csv")
        os.unlink(fifo)
        os.mkfifo(fifo, 0o600)
        errors: list[BaseException] = []

        def write() -> None:
            try:
                # Opening the pipe waits for its reader (LOAD DATA, or _drain); that end then gets
                # 1 MiB of buffer instead of 64 KiB, so DuckDB and LOAD DATA wait on each other less,
                # and DuckDB writes through it (/dev/fd/N reopens this very pipe).
                fd = os.open(fifo, os.O_WRONLY)
                try:
                    try:
                        fcntl.fcntl(fd, F_SETPIPE_SZ, CHUNK)
                    except OSError:  # above /proc/sys/fs/pipe-max-size: keep the default
                        pass
                    # One DuckDB thread keeps well ahead of LOAD DATA and leaves the other core to
                    # PyMySQL and the server (bench: 0.91 vs 0.90 of raw LOAD DATA with two).
                    convert_to_csv(src, data, f"/dev/fd/{fd}", null="NULL", whole=whole, what=what, threads=1)
                finally:
                    os.close(fd)  # the last writer: the reader sees the end of the file
            except BaseException as exc:  # noqa: BLE001 - handed to end_pipe()
                errors.append(exc)

        thread = threading.Thread(target=write, name="strict-csv", daemon=True)
        thread.start()
        self._pipe = (fifo, thread, errors)
        self._stack.callback(self._drain)
        return fifo

    def end_pipe(self, *, loader_failed: bool = False) -> None:
        """Wait for the pipe's writer; raise its error (the file's fault, with its line) if any.
        `loader_failed`: the load stopped reading (its own error, or a cut connection), so a
        writer that then found the pipe closed (EPIPE) is not the file's fault: the load's error
        stands."""
        if self._pipe is None:
            return
        errors = self._pipe[2]
        self._drain()
        if errors:
            exc = errors[0]
            if loader_failed and ("Broken pipe" in str(exc) or isinstance(exc, BrokenPipeError)):
                return
            if isinstance(exc, InputError):
                raise with_line(exc, self.local_file(), self.local_data) from None
            raise exc

    def _drain(self) -> None:
        """Read whatever the writer still has (a load that stopped early, or never started), so it
        can finish; then join it."""
        if self._pipe is None:
            return
        fifo, thread, _ = self._pipe
        self._pipe = None
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # never blocks; unblocks a writer's open
        try:
            while True:
                try:
                    chunk = os.read(fd, CHUNK)
                except BlockingIOError:
                    chunk = None
                if chunk:
                    continue
                if not thread.is_alive():
                    break
                thread.join(0.005)
        finally:
            os.close(fd)
        thread.join()

    def converted_csv(self, null: str = "", whole: set[str] = frozenset(), what: str = "loading") -> str:
        """Any input -> a temp CSV (header, '\\n', UTF-8, no BOM), by DuckDB's strict readers."""
        src = self.local_file()
        path = self._temp(".csv")
        convert_to_csv(src, self.local_data, path, null=null, whole=whole, what=what)
        return path

    def _temp(self, suffix: str) -> str:
        """A new spool file, deleted on close."""
        fd, path = spool_file(suffix)
        os.close(fd)
        self._stack.callback(_unlink, path)
        return path

    def close(self) -> None:
        self._stack.close()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
