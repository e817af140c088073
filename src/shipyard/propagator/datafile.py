"""Data files: what a file holds (format, compression, columns) read from its first bytes only.

Pure Python and the store: no engine. DuckDB's part (the fields JSON records have across its
sample) is in duckdb_reader; `sources.inspect` puts the two together.

CSV: a header row names the columns; they are matched to the table by name, in any order.
JSON lines / JSON arrays / Parquet (issue 4): the fields of the first record (or the Parquet
schema) name the columns. Everything is streamed; only the header is read up front.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Literal

from shipyard.errors import InputError
from shipyard.propagator.layout import check_identifier
from shipyard.store import ObjectStore
from shipyard.streams import bounded_reader

Format = Literal["csv", "jsonl", "json", "parquet"]
BOM = b"\xef\xbb\xbf"
CHUNK = 1 << 20
# A header line longer than this is not a header (a binary file, a one-line dump).
MAX_HEADER = 1 << 20


def file_format(name: str) -> tuple[Format, str | None]:
    """(format, compression) from a file name."""
    n = name.lower()
    comp = None
    if n.endswith(".gz"):
        comp, n = "gzip", n[:-3]
    if n.endswith(".csv"):
        return "csv", comp
    if n.endswith((".jsonl", ".ndjson")):
        return "jsonl", comp
    if n.endswith(".json"):
        return "json", comp
    if n.endswith(".parquet"):
        return "parquet", None
    raise InputError(f"{name!r}: unknown data file type",
                     hint="use .csv, .csv.gz, .jsonl, .ndjson, .json or .parquet")


@dataclass
class DataFile:
    key: str
    format: Format
    compression: str | None
    columns: list[str]  # lower-cased, validated, in file order

    def column_number(self, name: str) -> int | None:
        try:
            return self.columns.index(name.lower()) + 1
        except ValueError:
            return None


def open_decoded(store: ObjectStore, key: str, compression: str | None) -> BinaryIO:
    """The object's bytes, decompressed, streamed, and bounded (shipyard.streams: a size cap and
    an expansion-ratio cap, `limits.*` settings): a decompression bomb is refused, never expanded."""
    return bounded_reader(store.open(key), name=key.rsplit("/", 1)[-1], compression=compression or "none")


class SkipBOM(io.RawIOBase):
    """Drops a UTF-8 byte order mark at the start (COPY would take it as part of the first name)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._first = True

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        data = self._raw.read(n if n and n > 0 else CHUNK)
        if self._first:
            self._first = False
            if data.startswith(BOM):
                data = data[3:]
            elif len(data) < 3 and BOM.startswith(data) and data:
                data += self._raw.read(3 - len(data))
                data = data[3:] if data.startswith(BOM) else data
        return data

    def close(self) -> None:
        self._raw.close()
        super().close()


def iter_chunks(stream: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk


def check_columns(names: list[str], *, source: str) -> list[str]:
    out: list[str] = []
    for i, raw in enumerate(names, 1):
        name = raw.strip() if isinstance(raw, str) else raw
        where = {"line": 1, "column": i} if source == "header" else {"field": raw}
        if not name:
            raise InputError(f"column {i} of the {source} has no name",
                             hint="give every column a name in the header row", where=where)
        try:
            n = check_identifier(name, "column name")
        except InputError as e:
            raise InputError(f"{source} column {i}: {e.message}", hint=e.hint, where=where) from None
        if n in out:
            raise InputError(f"column {name!r} appears twice in the {source}",
                             hint="remove or rename one of them", where=where)
        out.append(n)
    return out


def inspect_csv(store: ObjectStore, key: str, compression: str | None) -> DataFile:
    """Read the header row (and peek for a first data row); never the whole file."""
    with open_decoded(store, key, compression) as f:
        buf = f.read(64 * 1024)
        while b"\n" not in buf and len(buf) < MAX_HEADER:
            more = f.read(64 * 1024)
            if not more:
                break
            buf += more
        if buf.startswith(BOM):
            buf = buf[3:]
        if not buf.strip():
            raise InputError("the file is empty", hint="export the data again with a header row and at least one row",
                             where={"line": 1})
        nl = buf.find(b"\n")
        if nl < 0 and len(buf) >= MAX_HEADER:
            raise InputError("the first line is longer than 1 MiB: this does not look like a CSV header",
                             hint="the first line must name the columns, e.g. id,name,amount", where={"line": 1})
        head, rest = (buf, b"") if nl < 0 else (buf[:nl], buf[nl + 1:])
        try:
            text = head.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            raise InputError("the header row is not UTF-8", hint="save the file as UTF-8 (CSV UTF-8 in Excel)",
                             where={"line": 1, "byte": e.start}) from None
        try:
            header = next(csv.reader([text]))
        except csv.Error as e:
            raise InputError(f"malformed header row: {e}", hint="the first line must name the columns, e.g. id,name",
                             where={"line": 1}) from None
        if not rest.strip():
            rest = f.read(64 * 1024)
            if not rest.strip():
                raise InputError("the file has a header row but no data rows",
                                 hint="add rows under the header (an empty export usually means the query "
                                 "returned nothing)", where={"line": 2})
    return DataFile(key, "csv", compression, check_columns(header, source="header"))


def first_json_record(store: ObjectStore, key: str, compression: str | None) -> list[str]:
    """The field names of the first record of a JSON lines file (checked as column names)."""
    with open_decoded(store, key, compression) as f:
        line_no = 0
        reader = f if isinstance(f, io.BufferedReader) else io.BufferedReader(f, CHUNK)  # type: ignore[arg-type]
        while True:
            line = reader.readline(MAX_HEADER)
            if not line:
                raise InputError("the file is empty" if line_no == 0 else "the file has no records",
                                 hint="write one JSON object per line", where={"line": max(line_no, 1)})
            line_no += 1
            if line_no == 1 and line.startswith(BOM):
                line = line[3:]
            if line.strip():
                break
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            col = getattr(e, "colno", None)
            raise InputError(f"line {line_no} is not a JSON object: {getattr(e, 'msg', e)}",
                             hint="write one JSON object per line (JSON lines)",
                             where={"line": line_no, "column": col}) from None
        if not isinstance(rec, dict):
            raise InputError(f"line {line_no} is a JSON {type(rec).__name__}, not an object",
                             hint="write one JSON object per line, e.g. {\"id\": 1}", where={"line": line_no})
    return check_columns(list(rec), source="first record")


def first_array_record(store: ObjectStore, key: str, compression: str | None) -> list[str]:
    """The field names of the first object of a JSON array file (checked as column names)."""
    with open_decoded(store, key, compression) as f:
        head = f.read(64 * 1024)
    if head.startswith(BOM):
        head = head[3:]
    s = head.lstrip()
    if not s:
        raise InputError("the file is empty", hint="write a JSON array of objects", where={"line": 1})
    if not s.startswith(b"["):
        raise InputError("a .json input must be a JSON array of objects ([{...}, {...}])",
                         hint="wrap the records in [ ], or use .jsonl for one object per line", where={"line": 1})
    # The first object's keys name the columns: decode just that object.
    dec = json.JSONDecoder()
    text = s[1:].decode("utf-8", errors="replace").lstrip()
    if text.startswith("]"):
        raise InputError("the JSON array is empty", hint="add records to the array", where={"line": 1})
    try:
        rec, _ = dec.raw_decode(text)
    except json.JSONDecodeError as e:
        raise InputError(f"the first record is not valid JSON: {e.msg}", hint="fix the JSON syntax",
                         where={"line": e.lineno, "column": e.colno}) from None
    if not isinstance(rec, dict):
        raise InputError("the array's records must be JSON objects", hint="use [{\"id\": 1}, ...]",
                         where={"line": 1})
    return check_columns(list(rec), source="first record")


def parquet_columns(path: str) -> list[str]:
    """The columns of a local Parquet file (its footer), checked; InputError if it has no rows."""
    import pyarrow.parquet as pq  # start-up cost: pyarrow loads only when a Parquet file comes

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for a bad file
        raise InputError(f"not a readable Parquet file ({type(e).__name__}: {e})",
                         hint="write the file with a Parquet writer (pandas.to_parquet, pyarrow, Spark)") from None
    if pf.metadata.num_rows == 0:
        raise InputError("the Parquet file has no rows", hint="write at least one row")
    return check_columns(pf.schema_arrow.names, source="Parquet schema")
