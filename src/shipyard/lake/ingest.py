"""`ingest`: raw JSON lines -> typed, deduplicated, hive-partitioned snappy Parquet.

One transaction per batch of raw files (`batch_mb`):
  1. stage the raw files on local disk (a LocalStore's own files; S3 objects streamed down);
  2. detect their types with DuckDB (every row, so a late 2.5 cannot hide in an int column),
     widen the kept schema, report conflicts with the file and line;
  3. the engine (DuckDB here, Spark in spark.py) reads them with exactly those types, derives
     partition columns, drops duplicates within the batch and rows whose id is already in the
     partitions the batch touches, and writes Parquet under a temp folder;
  4. publish: each file is put under a new unique name, then the manifest (the checkpoint
     too) is committed last. See manifest.py for why a crash leaves the lake as it was.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import time as _time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from shipyard.errors import ConfigError, InputError, NotFoundError, ShipyardError
from shipyard.lake import schema as sch
from shipyard.lake.config import Dataset, get_dataset
from shipyard.lake.manifest import (
    Manifest, check_compatible, commit, new_txn, now_iso, read_manifest, remove_orphans,
)
from shipyard.lake.read import connect, lit, parse_partition_path, partition_dir, q, register_lake, sql_list
from shipyard.store import ObjectInfo, ObjectStore, is_s3_url, open_store

log = logging.getLogger(__name__)

RAW_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")
# Test hook for a real crash: the writer SIGKILLs itself after publishing N data files,
# before the manifest commit (tests/lake/test_crash.py).
CRASH_ENV = "SHIPYARD_LAKE_CRASH_AFTER_FILES"

Progress = Callable[[str], None]


@dataclass
class IngestResult:
    dataset: str
    engine: str
    raw_files: int = 0
    raw_bytes: int = 0
    rows_read: int = 0
    duplicates: int = 0
    rows_written: int = 0
    files_written: int = 0
    bytes_written: int = 0
    partitions: set[str] = field(default_factory=set)
    new_columns: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    orphans_removed: int = 0
    raw_deleted: int = 0
    transactions: int = 0
    seconds: float = 0.0
    version: int = 0


@dataclass
class Batch:
    """What an engine gets: staged raw files with their exact types, and where to write."""

    ds: Dataset
    txn: str
    paths: list[str]          # local raw files
    raw_schema: dict[str, Any]  # raw JSON key -> type (merged)
    lake: ObjectStore
    manifest: Manifest
    outdir: Path
    workdir: Path
    raw_uris: list[str] = field(default_factory=list)  # the same files as the engine's cluster sees them
    # Set by an engine that wrote its output into the lake's store (Spark on a cluster)
    # instead of b.outdir: the prefix to publish from.
    staged_prefix: str | None = None


def is_raw(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return not name.startswith((".", "_")) and key.lower().endswith(RAW_SUFFIXES)


def _batches(infos: list[ObjectInfo], limit: int) -> list[list[ObjectInfo]]:
    out: list[list[ObjectInfo]] = []
    cur: list[ObjectInfo] = []
    size = 0
    for i in infos:
        if cur and size + i.size > limit:
            out.append(cur)
            cur, size = [], 0
        cur.append(i)
        size += i.size
    if cur:
        out.append(cur)
    return out


def _stage(raw: ObjectStore, infos: list[ObjectInfo], into: Path) -> dict[str, str]:
    """local path -> raw key; S3 objects are streamed to disk, never held in memory."""
    out = {}
    for n, info in enumerate(infos):
        lp = raw.local_path(info.key)
        if lp is not None and lp.is_file():
            out[str(lp)] = info.key
            continue
        dst = into / f"{n:06d}-{info.key.rsplit('/', 1)[-1]}"
        with raw.open(info.key) as src, open(dst, "wb") as f:
            shutil.copyfileobj(src, f, 1 << 20)
        out[str(dst)] = info.key
    return out


def _open_lines(path: str):
    import gzip

    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


# --- typing -------------------------------------------------------------------------------

def _read_json_sql(paths: list[str], columns: dict[str, Any] | None = None, filename: bool = False) -> str:
    # map_inference_threshold=-1: objects stay STRUCTs (Athena/Spark structs), never MAPs.
    opts = "format='newline_delimited', records=true, map_inference_threshold=-1"
    if filename:
        opts += ", filename=true"
    if columns is None:
        opts += ", union_by_name=true, sample_size=-1"
    else:
        cols = "{" + ", ".join(f"{lit(n)}: {lit(sch.to_sql(t))}" for n, t in columns.items()) + "}"
        opts += f", columns={cols}"
    return f"read_json({sql_list(paths)}, {opts})"


def detect(con: Any, paths: list[str]) -> dict[str, Any]:
    import duckdb

    try:
        rel = con.sql(f"SELECT * FROM {_read_json_sql(paths)} LIMIT 0")
    except duckdb.Error as exc:
        raise _RawError(str(exc).splitlines()[0]) from None
    return {n: sch.from_duckdb(t) for n, t in zip(rel.columns, rel.types)}


class _RawError(Exception):
    """DuckDB could not read a raw file (malformed JSON, not objects...)."""


def _explain_file(con: Any, path: str, key: str, kept: dict[str, Any],
                  declared: dict[str, Any]) -> str | None:
    """Why one raw file cannot join the lake, with its line; None when it can."""
    try:
        found = detect(con, [path])
    except _RawError as exc:
        with _open_lines(path) as f:
            hit = sch.find_malformed(f)
        if hit:
            return f"{key}, line {hit[0]}: {hit[1]}"
        return f"{key}: {exc}"
    _, conflicts = sch.merge_schema(kept, found, declared)
    if not conflicts:
        return None
    path_, want, got = conflicts[0]
    with _open_lines(path) as f:
        hit = sch.find_misfit(f, path_, want)
    where = f"{key}, line {hit[0]}" if hit else key
    value = f" (value {hit[1]})" if hit else ""
    return f"{where}: field {path_!r} is {sch.show(want)} in the lake but {sch.show(got)} here{value}"


def _is_blank(path: str) -> bool:
    """No record at all (an empty or whitespace-only file): nothing to read, nothing wrong."""
    with _open_lines(path) as f:
        while chunk := f.read(1 << 16):
            if chunk.strip():
                return False
    return True


def _type_batch(con: Any, ds: Dataset, m: Manifest, staged: dict[str, str],
                result: IngestResult) -> tuple[dict[str, Any], list[str]]:
    """Merged raw schema and the paths that can be ingested; conflicts fail or are skipped."""
    declared = {k: sch.from_sql(v) for k, v in ds.config.columns.items()}
    kept = {n: declared.get(n, t) for n, t in m.schema.items()}
    paths = [p for p in staged if not _is_blank(p)]
    if not paths:
        return kept, []
    bad: dict[str, str] = {}
    batch_error = None
    try:
        found = detect(con, paths)
        merged, conflicts = sch.merge_schema(kept, found, declared)
    except _RawError as exc:
        conflicts, batch_error = [("", None, None)], str(exc)
    if conflicts:
        for p in paths:
            why = _explain_file(con, p, staged[p], kept, declared)
            if why:
                bad[p] = why
        if not bad:  # every file alone is fine: report what DuckDB saw on the whole batch
            if batch_error:
                raise ShipyardError(
                    f"dataset {ds.name!r}: DuckDB could not read the raw batch: {batch_error}",
                    hint="if it ran out of memory, raise [lake] memory_limit or lower "
                    f"lake.datasets.{ds.name}.batch_mb",
                )
            path_, want, got = conflicts[0]
            raise InputError(
                f"dataset {ds.name!r}: field {path_!r} is {sch.show(want)} in the lake but "
                f"{sch.show(got)} across this batch's files",
                hint=f"declare its type in [lake.datasets.{ds.name}.columns]",
            )
        if ds.config.on_bad_file == "fail":
            lines = list(bad.values())
            more = f" (and {len(lines) - 5} more files)" if len(lines) > 5 else ""
            raise InputError(
                f"dataset {ds.name!r}: {len(lines)} raw file(s) do not fit the lake's schema: "
                + "; ".join(lines[:5]) + more + "; nothing was written",
                hint="fix or move the file(s) aside, declare the column's type in "
                f"[lake.datasets.{ds.name}.columns] (e.g. VARCHAR), or set on_bad_file = \"skip\"",
            )
        paths = [p for p in paths if p not in bad]
        for p, why in bad.items():
            result.rejected[staged[p]] = why
        merged = kept
        if paths:
            merged, conflicts = sch.merge_schema(kept, detect(con, paths), declared)
            if conflicts:
                raise InputError(f"dataset {ds.name!r}: cannot type the raw batch: {conflicts[0]}")
    merged = {k: v for k, v in merged.items() if v != sch.NULL}
    if m.version > 0:
        old = set(sch.field_paths(m.schema))
        result.new_columns += [p for p in sch.field_paths(merged) if p not in old]
    return merged, paths


def _check_columns(ds: Dataset, raw_schema: dict[str, Any]) -> None:
    c = ds.config
    lake_names = {c.rename.get(r, r): t for r, t in raw_schema.items()}
    known = ", ".join(sorted(lake_names)) or "none"
    for col in c.id:
        if col not in lake_names:
            raise ConfigError(f"dataset {ds.name!r}: id column {col!r} is not in the raw records (fields: {known})",
                              hint=f"fix lake.datasets.{ds.name}.id")
    if c.time not in lake_names:
        raise ConfigError(f"dataset {ds.name!r}: time column {c.time!r} is not in the raw records (fields: {known})",
                          hint=f"fix lake.datasets.{ds.name}.time")
    tt = lake_names[c.time]
    if tt not in sch._TIMES and not (tt in ("BIGINT", "DOUBLE") and c.time_unit):
        raise ConfigError(
            f"dataset {ds.name!r}: time column {c.time!r} is {sch.show(tt)}, not a date or timestamp",
            hint=f"use ISO 8601 times, declare lake.datasets.{ds.name}.columns.{c.time} = \"TIMESTAMP\", "
            "or time_unit = \"s\"/\"ms\" for epoch numbers",
        )
    derived = {p.name for p in ds.partitions if p.kind != "field"}
    for p in ds.partitions:
        if p.kind in ("field", "bucket") and p.field not in lake_names:
            raise ConfigError(f"dataset {ds.name!r}: partition field {p.field!r} is not in the raw records "
                              f"(fields: {known})", hint=f"fix lake.datasets.{ds.name}.partition_by")
    clash = derived & set(lake_names)
    if clash:
        raise ConfigError(f"dataset {ds.name!r}: raw field(s) {sorted(clash)} collide with partition columns",
                          hint=f"rename them: [lake.datasets.{ds.name}.rename]")
    for col in c.sort_by:
        if col not in lake_names:
            raise ConfigError(f"dataset {ds.name!r}: sort_by column {col!r} is not in the raw records",
                              hint=f"fix lake.datasets.{ds.name}.sort_by")


def time_expr(ds: Dataset, t: Any, col: str) -> str:
    """SQL (DuckDB) for the event time as a UTC timestamp."""
    c = q(col)
    if ds.config.time_unit == "s" and t in ("BIGINT", "DOUBLE"):
        return f"to_timestamp({c})"
    if ds.config.time_unit == "ms" and t in ("BIGINT", "DOUBLE"):
        return f"to_timestamp({c} / 1000.0)"
    return f"CAST({c} AS TIMESTAMPTZ)"


DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"


def partition_exprs(ds: Dataset, lake_types: dict[str, Any]) -> dict[str, str]:
    """Partition column -> DuckDB expression (always text, as in the folder name)."""
    out = {}
    ts = time_expr(ds, lake_types[ds.config.time], ds.config.time)
    for p in ds.partitions:
        if p.kind == "dt":
            e = f"strftime({ts}, '%Y-%m-%d')"
        elif p.kind == "hour":
            e = f"strftime({ts}, '%H')"
        elif p.kind == "field":
            e = f"CAST({q(p.field)} AS VARCHAR)"
        else:
            # md5 so Spark computes the same bucket: conv(substr(md5(x), 1, 8), 16, 10) % N.
            e = (f"CAST(CAST(('0x' || left(md5(CAST({q(p.field)} AS VARCHAR)), 8)) AS UBIGINT) "
                 f"% {p.buckets} AS VARCHAR)")
        out[p.name] = f"coalesce({e}, '{DEFAULT_PARTITION}')"
    return out


# --- the DuckDB engine --------------------------------------------------------------------

def duckdb_write(con: Any, b: Batch) -> tuple[int, int, int]:
    """(rows read, rows after in-batch dedupe, rows written); Parquet lands in b.outdir."""
    ds, c = b.ds, b.ds.config
    lake_types = {c.rename.get(r, r): t for r, t in b.raw_schema.items()}
    parts = partition_exprs(ds, lake_types)
    field_parts = {p.field for p in ds.partitions if p.kind == "field"}
    select = [f"{q(r)} AS {q(c.rename.get(r, r))}" for r in b.raw_schema
              if c.rename.get(r, r) not in field_parts]
    # Field partitions: the derived text column replaces the raw one (it lives in the path).
    select += [f"{e} AS {q(n)}" for n, e in parts.items()]
    ids = ", ".join(q(i) for i in c.id)
    # One materialization: typed rows plus their rank within the batch by id (first file
    # wins; ties within a file are identical events re-sent, which is what this is for).
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE batch AS SELECT {', '.join(select)}, "
        f"row_number() OVER (PARTITION BY {ids} ORDER BY filename) AS __rn "
        f"FROM {_read_json_sql(b.paths, b.raw_schema, filename=True)}"
    )
    rows_read, rows_unique = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE __rn = 1) FROM batch").fetchone()
    con.execute("CREATE OR REPLACE TEMP VIEW uniq AS SELECT * EXCLUDE (__rn) FROM batch WHERE __rn = 1")
    pnames = list(parts)
    touched = {tuple(r) for r in con.execute(
        f"SELECT DISTINCT {', '.join(q(p) for p in pnames) or '1'} FROM uniq").fetchall()}
    existing = b.manifest.files_in(touched, pnames) if pnames else list(b.manifest.files)
    where = ""
    if existing:
        register_lake(con, "existing", ds, b.lake, b.manifest, existing, columns=c.id + pnames)
        on = " AND ".join(f"u.{q(k)} IS NOT DISTINCT FROM e.{q(k)}" for k in c.id + pnames)
        where = f"WHERE NOT EXISTS (SELECT 1 FROM existing e WHERE {on})"
    order = f"ORDER BY {', '.join(q(s) for s in c.sort_by)}" if c.sort_by else ""
    opts = [
        "FORMAT parquet", "COMPRESSION snappy", f"FILE_SIZE_BYTES '{c.file_size_mb}MB'",
        f"FILENAME_PATTERN 'part-{b.txn}-{{i}}'",
    ]
    if pnames:
        opts.append(f"PARTITION_BY ({', '.join(q(p) for p in pnames)})")
        b.outdir.mkdir(parents=True, exist_ok=True)
        target = str(b.outdir)
    else:
        b.outdir.mkdir(parents=True, exist_ok=True)
        target = str(b.outdir / f"part-{b.txn}-0.parquet")
        opts = [o for o in opts if not o.startswith(("FILE_SIZE", "FILENAME"))]
    written = con.execute(
        f"COPY (SELECT u.* FROM uniq u {where} {order}) TO {lit(target)} ({', '.join(opts)})"
    ).fetchone()[0]
    con.execute("DROP VIEW uniq")
    con.execute("DROP TABLE batch")
    return rows_read, rows_unique, int(written)


def _mapped(ds: Dataset, fn: Callable, *args: Any) -> Any:
    """DuckDB's errors during the write, as ours (nothing is committed either way)."""
    import duckdb

    try:
        return fn(*args)
    except duckdb.OutOfMemoryException as exc:
        raise ShipyardError(
            f"dataset {ds.name!r}: DuckDB ran out of memory: {str(exc).splitlines()[0]}",
            hint="raise [lake] memory_limit (SHIPYARD_LAKE__MEMORY_LIMIT) or lower "
            f"lake.datasets.{ds.name}.batch_mb; nothing was committed",
        ) from None
    except duckdb.Error as exc:
        raise InputError(f"dataset {ds.name!r}: the write failed: {str(exc).splitlines()[0]}",
                         hint="nothing was committed; run with --debug for details") from None


# --- publishing ---------------------------------------------------------------------------

def publish(lake: ObjectStore, outdir: Path, txn: str) -> list[dict[str, Any]]:
    """Put every Parquet file under a new unique key; returns manifest entries."""
    import pyarrow.parquet as pq

    entries = []
    files = sorted(p for p in outdir.rglob("*.parquet") if not p.name.startswith((".", "_")))
    for n, path in enumerate(files):
        rel_dir = path.parent.relative_to(outdir).as_posix()
        partition = parse_partition_path("" if rel_dir == "." else rel_dir)
        rel_dir = partition_dir(partition)
        key = (rel_dir + "/" if rel_dir else "") + f"part-{txn}-{n:05d}.parquet"
        rows = pq.ParquetFile(path).metadata.num_rows
        with open(path, "rb") as f:
            lake.put(key, f)
        entries.append({"key": key, "partition": partition, "rows": rows,
                        "bytes": path.stat().st_size, "txn": txn})
        _maybe_crash(len(entries))
    return entries


def _maybe_crash(published: int) -> None:
    crash_after = os.environ.get(CRASH_ENV)
    if crash_after is not None and published >= int(crash_after):
        log.warning("%s=%s: killing this process before the manifest commit", CRASH_ENV, crash_after)
        os.kill(os.getpid(), signal.SIGKILL)


def publish_staged(lake: ObjectStore, prefix: str, txn: str) -> list[dict[str, Any]]:
    """Like publish, for files an engine wrote into the lake's store under `prefix`
    (`_shipyard/staging/<txn>/`, hidden from Hive/Athena): moved server-side to their keys."""
    import pyarrow.parquet as pq

    from shipyard.lake.read import s3_filesystem

    entries = []
    infos = [i for i in lake.list(prefix + "/") if i.key.endswith(".parquet")
             and not i.key.rsplit("/", 1)[-1].startswith((".", "_"))]
    s3fs = None
    for n, info in enumerate(sorted(infos, key=lambda i: i.key)):
        rel = info.key[len(prefix) + 1:]
        partition = parse_partition_path(rel.rsplit("/", 1)[0] if "/" in rel else "")
        rel_dir = partition_dir(partition)
        key = (rel_dir + "/" if rel_dir else "") + f"part-{txn}-{n:05d}.parquet"
        lp = lake.local_path(info.key)
        if lp is not None:
            rows = pq.ParquetFile(lp).metadata.num_rows
        else:  # footer only, by byte range
            s3fs = s3fs or s3_filesystem()
            with s3fs.open_input_file(lake.uri(info.key)[len("s3://"):]) as f:
                rows = pq.ParquetFile(f).metadata.num_rows
        lake.move(info.key, key)
        entries.append({"key": key, "partition": partition, "rows": rows, "bytes": info.size, "txn": txn})
        _maybe_crash(len(entries))
    for leftover in list(lake.list(prefix + "/")):  # _SUCCESS, .crc
        lake.delete(leftover.key)
    return entries


def _retention(raw: ObjectStore, ds: Dataset, m: Manifest) -> list[str]:
    """Delete raw files ingested more than raw_retention_days ago (they are in the lake)."""
    days = ds.config.raw_retention_days
    if days is None:
        return []
    cutoff = datetime.now(timezone.utc) - timedelta(days=days)
    gone = []
    for key, rec in m.ingested.items():
        if rec.get("deleted"):
            continue
        at = datetime.strptime(rec["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        if at <= cutoff:
            raw.delete(key)
            gone.append(key)
    return gone


def ingest(dataset: str | Dataset, *, engine: str = "duckdb", progress: Progress | None = None,
           settings: Any = None) -> IngestResult:
    """Ingest every raw file not ingested yet; idempotent, one commit per batch."""
    ds = dataset if isinstance(dataset, Dataset) else get_dataset(dataset, settings)
    if engine not in ("duckdb", "spark"):
        raise ConfigError(f"unknown engine {engine!r}", hint="use --engine duckdb or --engine spark")
    say = progress or (lambda s: None)
    t0 = _time.perf_counter()
    res = IngestResult(ds.name, engine)
    if not is_s3_url(ds.raw_url) and not Path(ds.raw_url).is_dir():
        raise NotFoundError(
            f"dataset {ds.name!r}: the raw zone {ds.raw_url} does not exist",
            hint=f"create it and drop JSON lines files in it, or fix lake.datasets.{ds.name}.raw "
            "(relative paths are relative to shipyard.toml)",
        )
    raw, lake = open_store(ds.raw_url), open_store(ds.lake_url)
    m = read_manifest(lake, ds.name)
    check_compatible(m, ds.config.partition_by, ds.config.id, ds.name)
    res.orphans_removed = len(remove_orphans(lake, m))
    if res.orphans_removed:
        say(f"removed {res.orphans_removed} file(s) left by an interrupted run")
    pending = [i for i in raw.list("") if is_raw(i.key) and not m.is_done(i.key, i.size, i.etag)]
    if not pending:
        say("nothing new in the raw zone")
    batches = _batches(pending, ds.config.batch_mb << 20)
    spark = None
    if engine == "spark" and batches:
        from shipyard.lake.spark import session

        say("starting Spark (local mode)")
        spark = session()
    for bn, infos in enumerate(batches, 1):
        size = sum(i.size for i in infos)
        say(f"batch {bn}/{len(batches)}: {len(infos)} raw file(s), {size / 1e6:.1f} MB")
        with tempfile.TemporaryDirectory(prefix="shipyard-lake-") as tmp:
            work = Path(tmp)
            (work / "raw").mkdir()
            con = connect(spill_dir=str(work / "spill"))
            con.execute("SET preserve_insertion_order=false")  # bounded memory for big COPYs
            staged = _stage(raw, infos, work / "raw")
            txn = new_txn()
            res_rej_before = set(res.rejected)
            raw_schema, paths = _type_batch(con, ds, m, staged, res)
            blanks = [p for p in staged if p not in paths and staged[p] not in res.rejected]
            entries: list[dict[str, Any]] = []
            rows = (0, 0, 0)
            if paths:
                _check_columns(ds, raw_schema)
                b = Batch(ds, txn, paths, raw_schema, lake, m, work / "out", work,
                          raw_uris=[raw.uri(staged[p]) for p in paths])
                if spark is not None:
                    from shipyard.lake.spark import spark_write

                    rows = spark_write(spark, con, b)
                else:
                    rows = _mapped(ds, duckdb_write, con, b)
                con.close()
                say(f"  {rows[0]} rows read, {rows[0] - rows[1]} duplicate(s) in the batch; publishing")
                entries = (publish_staged(lake, b.staged_prefix, txn) if b.staged_prefix
                           else publish(lake, b.outdir, txn))
                if rows[2] < 0:  # the engine could not count what it wrote
                    rows = (rows[0], rows[1], sum(e["rows"] for e in entries))
            expected = m.version
            at = now_iso()
            if paths:
                m.schema = raw_schema
            else:
                con.close()
            m.partition_by, m.id = list(ds.config.partition_by), list(ds.config.id)
            m.files = m.files + entries
            by_key = {i.key: i for i in infos}
            for p in paths + blanks:
                k = staged[p]
                m.ingested[k] = {"size": by_key[k].size, "etag": by_key[k].etag, "at": at, "txn": txn}
                m.rejected.pop(k, None)
            for k in set(res.rejected) - res_rej_before:
                m.rejected[k] = {"size": by_key[k].size, "etag": by_key[k].etag, "at": at,
                                 "error": res.rejected[k]}
            m.history.append({"txn": txn, "at": at, "op": "ingest", "engine": engine,
                              "raw_files": len(paths), "rows_read": rows[0], "rows_written": rows[2],
                              "files": len(entries)})
            commit(lake, m, expected_version=expected)
        res.transactions += 1
        res.raw_files += len(paths)
        res.raw_bytes += sum(by_key[staged[p]].size for p in paths)
        res.rows_read += rows[0]
        res.rows_written += rows[2]
        res.duplicates += rows[0] - rows[2]
        res.files_written += len(entries)
        res.bytes_written += sum(e["bytes"] for e in entries)
        res.partitions |= {"/".join(f"{k}={v}" for k, v in e["partition"].items()) for e in entries}
    deleted = _retention(raw, ds, m)
    res.raw_deleted = len(deleted)
    if deleted:
        for key in deleted:
            m.ingested[key]["deleted"] = True
        commit(lake, m, expected_version=m.version)
    res.version = m.version
    res.seconds = _time.perf_counter() - t0
    return res


__all__ = ["ingest", "IngestResult", "Batch", "is_raw", "publish", "publish_staged"]
