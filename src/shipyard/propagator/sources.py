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

import os
import shutil
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
