"""One data file, inspected, and offered the way each engine reads best.

`inspect` reads what a file holds (format, columns) from its first bytes, plus DuckDB's sample
for JSON; `Source` gives the engine a local path (DuckDB), a strictly checked CSV file (MySQL's
LOAD DATA) or a stream of CSV chunks (COPY FROM STDIN), and removes its temp files on close.
"""

from __future__ import annotations

import os
from typing import Iterator

from shipyard.propagator.datafile import (
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
from shipyard.propagator.duckdb_reader import convert_to_csv, json_fields
from shipyard.propagator.spool import spool_file, spooled_copy, suffix_of
from shipyard.store import ObjectStore


def inspect(store: ObjectStore, key: str, name: str) -> DataFile:
    """What the file holds. S3 objects that must be read whole (JSON's sample, Parquet's footer)
    are copied to a temp file once, kept in `DataFile.spooled` for the load."""
    fmt, comp = file_format(name)
    if fmt == "csv":
        return inspect_csv(store, key, comp)
    if fmt == "jsonl":
        first_json_record(store, key, comp)
    elif fmt == "json":
        first_array_record(store, key, comp)
    data = DataFile(key, fmt, comp, [])
    local = store.local_path(key)
    if local is None:
        data.spooled = spooled_copy(store, key, suffix_of(name))
    try:
        path = str(local) if local is not None else str(data.spooled)
        data.columns = parquet_columns(path) if fmt == "parquet" else json_fields(path, data)
    except BaseException:
        if data.spooled:
            os.unlink(data.spooled)
        raise
    return data


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
        path = spooled_copy(self.store, self.key, suffix_of(self.key.rsplit("/", 1)[-1]))
        self._temps.append(path)
        return path

    def csv_chunks(self) -> Iterator[bytes]:
        """The rows as UTF-8 CSV with a header: decompressed, BOM dropped, JSON/Parquet converted."""
        if self.data.format == "csv":
            with SkipBOM(open_decoded(self.store, self.key, self.data.compression)) as f:  # type: ignore[arg-type]
                yield from iter_chunks(f)
            return
        with open(self.converted_csv(), "rb") as f:
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
        """Any input -> a temp CSV (header, '\\n', UTF-8, no BOM), by DuckDB's strict readers."""
        src = self.local_file()
        fd, path = spool_file(".csv")
        os.close(fd)
        self._temps.append(path)
        convert_to_csv(src, self.data, path, null=null)
        return path

    def close(self) -> None:
        for p in self._temps:
            try:
                os.unlink(p)
            except OSError:
                pass
        self._temps.clear()
