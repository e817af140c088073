"""`ingest`: raw JSON -> typed, deduplicated, hive-partitioned Parquet (the runner).

plan.plan_ingest picks the new raw files and batches them; then, one transaction per batch:
  1. staging.stage: the raw files as local paths;
  2. typecheck.type_batch: DuckDB detects types (each file on the worker that staged it: over
     its first rows for the DuckDB engine, proved by its strict read, see strict.py; over every
     row otherwise, or when that proof fails), the kept schema is widened, a file that does not
     fit is named with its line;
  3. the engine (engines/: DuckDB, Spark) reads them with exactly those types, derives the
     partition columns, drops duplicates within the batch and against the touched partitions,
     and writes Parquet under a temp folder;
  4. publish: each file goes under a new unique key, then the manifest (the checkpoint too) is
     committed last. See manifest.py for why a crash leaves the lake as it was.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from shipyard.errors import ConfigError, InputError, NotFoundError, ShipyardError
from shipyard.lake import strict
from shipyard.lake.config import Dataset, get_dataset
from shipyard.lake.engines import ENGINES, Batch, Engine, Written
from shipyard.lake.engines.duck import count_by_partition
from shipyard.lake.errors import mapped
from shipyard.lake.manifest import (
    Manifest, check_compatible, commit, new_txn, now_iso, read_manifest, remove_orphans,
)
from shipyard.lake.notices import notify
from shipyard.lake.plan import IngestPlan, plan_ingest
from shipyard.lake.publish import after_commit, publish, publish_staged
from shipyard.lake.read import available_cores, connect, partition_dir
from shipyard.lake.staging import stage
from shipyard.lake.typecheck import Typed, check_columns, detector, type_batch
from shipyard.settings import Settings, get_settings
from shipyard.store import ObjectInfo, ObjectStore, is_s3_url, open_store

Progress = Callable[[str], None]
log = logging.getLogger("shipyard.lake")


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
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step
    one_pass: bool = False  # types from samples, proved by one strict read (lake/strict.py)
    # Why a batch was typed over every row after its sampled types failed the strict read.
    full_detection: list[str] = field(default_factory=list)

    def add_phase(self, name: str, seconds: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + seconds


@dataclass
class DryRun:
    """What `ingest` would do, nothing written: files, partitions with their raw row counts."""

    plan: IngestPlan
    partitions: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    new_columns: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)


def _open(ds: Dataset) -> tuple[ObjectStore, ObjectStore, Manifest]:
    if not is_s3_url(ds.raw_url) and not Path(ds.raw_url).is_dir():
        raise NotFoundError(
            f"dataset {ds.name!r}: the raw zone {ds.raw_url} does not exist",
            hint=f"create it and drop JSON lines files in it, or fix lake.datasets.{ds.name}.raw "
            "(relative paths are relative to shipyard.toml)",
        )
    raw, lake = open_store(ds.raw_url), open_store(ds.lake_url)
    m = read_manifest(lake, ds.name)
    check_compatible(m, ds.config.partition_by, ds.config.id, ds.name)
    return raw, lake, m


def _retention(raw: ObjectStore, ds: Dataset, m: Manifest, now: datetime) -> list[str]:
    """Delete raw files ingested more than raw_retention_days ago (they are in the lake)."""
    days = ds.config.raw_retention_days
    if days is None:
        return []
    cutoff = now - timedelta(days=days)
    gone = []
    for key, rec in m.ingested.items():
        if rec.get("deleted"):
            continue
        at = datetime.strptime(rec["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        if at <= cutoff:
            raw.delete(key)
            gone.append(key)
    return gone


def _typed_batch(con: Any, ds: Dataset, raw: ObjectStore, lake: ObjectStore, m: Manifest,
                 infos: list[ObjectInfo], work: Path, res: IngestResult,
                 sampled: bool = False) -> tuple[dict[str, str], Typed, Batch]:
    t = time.perf_counter()
    # Each file is typed (DuckDB's detection over all its rows, or over its first rows when
    # a strict read proves the types: strict.py) by the worker that staged it.
    (work / "raw").mkdir()
    joined = strict.Joined(work / "batch.json") if sampled else None
    staged = stage(raw, infos, work / "raw", threads=available_cores(),
                   then=strict.sampler(con, joined) if joined else detector(con))
    res.add_phase("stage + sample" if sampled else "stage + detect", time.perf_counter() - t)
    if sampled and staged.unreadable:  # its parts written before the refusal joined the batch
        raise strict.NotStrict("a raw object that cannot be read")
    if staged.unreadable and ds.config.on_bad_file == "fail":
        lines = list(staged.unreadable.values())
        raise InputError(
            f"dataset {ds.name!r}: {len(lines)} raw object(s) cannot be read: " + "; ".join(lines[:5])
            + (f" (and {len(lines) - 5} more)" if len(lines) > 5 else "") + "; nothing was written",
            hint=f"move them out of the raw zone, or set lake.datasets.{ds.name}.on_bad_file = \"skip\"")
    t = time.perf_counter()
    try:
        typed = type_batch(con, ds, m, staged.paths, staged.found, explain=not sampled)
    except InputError:
        if sampled:  # the old way names the file and line in the raw object itself
            raise strict.NotStrict("a sampled file does not fit the lake's schema") from None
        raise
    if sampled and typed.rejected:
        raise strict.NotStrict("a sampled file does not fit the lake's schema")
    if typed.paths:
        try:
            check_columns(ds, typed.schema)
        except ConfigError:
            if sampled:  # the id or time field may only show up after the sampled rows
                raise strict.NotStrict("a configured column is not in the sampled rows") from None
            raise
    res.add_phase("type checks", time.perf_counter() - t)
    b = Batch(ds, new_txn(), typed.paths, typed.schema, lake, m, work / "out", work,
              raw_uris=[raw.uri(k) for k in dict.fromkeys(staged.paths[p] for p in typed.paths)])
    if sampled:
        b.joined = joined
        b.strict_types = strict.read_types(typed.schema, [f for p in typed.paths
                                                          if isinstance(f := staged.found[p], dict)])
    paths = dict(staged.paths)
    for key, why in staged.unreadable.items():  # recorded as rejected, like a misfit file
        paths[key] = key
        typed.rejected[key] = why
    return paths, typed, b


def _write_batch(eng: Engine, con: Any, ds: Dataset, raw: ObjectStore, lake: ObjectStore, m: Manifest,
                 infos: list[ObjectInfo], work: Path, res: IngestResult, say: Progress,
                 sampled: bool) -> tuple[dict[str, str], Typed, Batch, list[dict[str, Any]], Written]:
    """Stage, type and write one batch into `work` (nothing committed)."""
    work.mkdir()
    staged, typed, b = _typed_batch(con, ds, raw, lake, m, infos, work, res, sampled)
    entries: list[dict[str, Any]] = []
    w = Written(0, 0, 0)
    if typed.paths:
        w = mapped(ds, eng.write, con, b)
        for k, v in w.phases.items():
            res.add_phase(k, v)
        say(f"  {w.read} rows read, {w.written} to write; publishing")
        t = time.perf_counter()
        entries = publish_staged(lake, b.staged_prefix, b.txn) if b.staged_prefix else \
            publish(lake, b.outdir, b.txn, w.files)
        res.add_phase("publish", time.perf_counter() - t)
        if w.written < 0:  # the engine could not count what it wrote
            w.written = sum(e["rows"] for e in entries)
    return staged, typed, b, entries, w


def _record(m: Manifest, ds: Dataset, staged: dict[str, str], typed: Typed, infos: list[ObjectInfo],
            entries: list[dict[str, Any]], w: Written, txn: str, engine: str) -> None:
    """The batch's changes to the manifest (committed by the caller)."""
    at = now_iso()
    if typed.paths:
        m.schema = typed.schema
    m.partition_by, m.id = list(ds.config.partition_by), list(ds.config.id)
    m.files = m.files + entries
    by_key = {i.key: i for i in infos}
    for p in typed.paths + typed.blanks:
        k = staged[p]
        m.ingested[k] = {"size": by_key[k].size, "etag": by_key[k].etag, "at": at, "txn": txn}
        m.rejected.pop(k, None)
    for p, why in typed.rejected.items():
        k = staged[p]
        m.rejected[k] = {"size": by_key[k].size, "etag": by_key[k].etag, "at": at, "error": why}
    m.history.append({"txn": txn, "at": at, "op": "ingest", "engine": engine,
                      "raw_files": len({staged[p] for p in typed.paths}), "rows_read": w.read, "rows_written": w.written,
                      "files": len(entries)})


def _run_batch(eng: Engine, ds: Dataset, raw: ObjectStore, lake: ObjectStore, m: Manifest,
               infos: list[ObjectInfo], res: IngestResult, say: Progress, sampled: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="shipyard-lake-") as tmp:
        con = connect(spill_dir=str(Path(tmp) / "spill"))
        con.execute("SET preserve_insertion_order=false")  # bounded memory for big COPYs
        try:
            staged, typed, b, entries, w = _write_batch(eng, con, ds, raw, lake, m, infos, Path(tmp) / "s",
                                                        res, say, sampled)
        except strict.NotStrict as why:
            # The sampled types did not hold for every row: type it the old way (the parts
            # were consumed; they are staged again from the raw zone).
            log.debug("dataset %s: typed over every row: %s", ds.name, why)
            res.full_detection.append(str(why))
            say(f"  the sampled types do not fit every row ({why}); detecting over every row")
            for table in ("batch", "batch_dups", "batch_dup_ids"):
                con.execute(f"DROP TABLE IF EXISTS {table}")
            shutil.rmtree(Path(tmp) / "s")  # the joined file: the disk is not used twice
            staged, typed, b, entries, w = _write_batch(eng, con, ds, raw, lake, m, infos, Path(tmp) / "f",
                                                        res, say, False)
        con.close()
    t = time.perf_counter()
    expected = m.version
    _record(m, ds, staged, typed, infos, entries, w, b.txn, eng.name)
    commit(lake, m, expected_version=expected)
    after_commit(ds, lake, m, {partition_dir(e["partition"]) for e in entries})
    res.add_phase("manifest commit", time.perf_counter() - t)
    res.transactions += 1
    res.raw_files += len({staged[p] for p in typed.paths})
    res.raw_bytes += sum(i.size for i in infos if i.key in {staged[p] for p in typed.paths})
    res.rows_read += w.read
    res.rows_written += w.written
    res.duplicates += w.read - w.written
    res.files_written += len(entries)
    res.bytes_written += sum(e["bytes"] for e in entries)
    res.partitions |= {partition_dir(e["partition"]) for e in entries}
    res.new_columns += typed.new_columns
    res.rejected.update({staged[p]: why for p, why in typed.rejected.items()})


def ingest(dataset: str | Dataset, *, engine: str = "duckdb", progress: Progress | None = None,
           notify_success: bool = False, settings: Settings | None = None) -> IngestResult:
    """Ingest every raw file not ingested yet; idempotent, one commit per batch. A failure is
    sent as a notice (with the file and line), and so are skipped raw files; a success only
    with notify_success."""
    ds = dataset if isinstance(dataset, Dataset) else get_dataset(dataset, settings)
    try:
        res = _ingest(ds, engine, progress, settings)
    except ShipyardError as exc:
        notify("failure", f"lake ingest {ds.name}: failed", exc.message,
               {"dataset": ds.name, "engine": engine, "hint": exc.hint}, settings)
        raise
    if res.rejected:
        notify("warning", f"lake ingest {ds.name}: {len(res.rejected)} raw file(s) skipped",
               "; ".join(list(res.rejected.values())[:10]),
               {"dataset": ds.name, "files": sorted(res.rejected)}, settings)
    if notify_success:
        notify("success", f"lake ingest {ds.name}: {res.rows_written} rows",
               f"{res.raw_files} raw file(s), {res.rows_read} rows read, {res.duplicates} duplicate(s) "
               f"dropped, {res.rows_written} written in {len(res.partitions)} partition(s)",
               {"dataset": ds.name, "version": res.version, "rows_written": res.rows_written,
                "partitions": sorted(res.partitions)[:50], "seconds": round(res.seconds, 2)}, settings)
    return res


def _ingest(ds: Dataset, engine: str, progress: Progress | None, settings: Settings | None) -> IngestResult:
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}", hint="use --engine " + " or --engine ".join(ENGINES))
    say = progress or (lambda s: None)
    t0 = time.perf_counter()
    res = IngestResult(ds.name, engine)
    raw, lake, m = _open(ds)
    res.orphans_removed = len(remove_orphans(lake, m))
    if res.orphans_removed:
        say(f"removed {res.orphans_removed} file(s) left by an interrupted run")
    plan = plan_ingest(ds, m, list(raw.list("")))
    if not plan.batches:
        say("nothing new in the raw zone")
    eng = ENGINES[engine]((settings or get_settings()).lake) if plan.batches else None
    res.one_pass = engine == "duckdb" and (settings or get_settings()).lake.fast_typing
    for bn, infos in enumerate(plan.batches, 1):
        size = sum(i.size for i in infos)
        say(f"batch {bn}/{len(plan.batches)}: {len(infos)} raw file(s), {size / 1e6:.1f} MB")
        _run_batch(eng, ds, raw, lake, m, infos, res, say, sampled=res.one_pass)
    if eng is not None:
        eng.close()
    deleted = _retention(raw, ds, m, datetime.now(timezone.utc))
    res.raw_deleted = len(deleted)
    if deleted:
        for key in deleted:
            m.ingested[key]["deleted"] = True
        commit(lake, m, expected_version=m.version)
    res.version = m.version
    res.seconds = time.perf_counter() - t0
    return res


def dry_run(dataset: str | Dataset, *, settings: Settings | None = None) -> DryRun:
    """The plan, with each batch typed and counted per partition; nothing is written."""
    ds = dataset if isinstance(dataset, Dataset) else get_dataset(dataset, settings)
    raw, lake, m = _open(ds)
    out = DryRun(plan_ingest(ds, m, list(raw.list(""))))
    scratch = IngestResult(ds.name, "duckdb")
    for infos in out.plan.batches:
        with tempfile.TemporaryDirectory(prefix="shipyard-lake-") as tmp:
            work = Path(tmp)
            con = connect(spill_dir=str(work / "spill"))
            staged, typed, b = _typed_batch(con, ds, raw, lake, m, infos, work, scratch)
            if typed.paths:
                names = [p.name for p in ds.partitions]
                for key, n in mapped(ds, count_by_partition, con, b).items():
                    folder = partition_dir(dict(zip(names, key))) or "(none)"
                    out.partitions[folder] = out.partitions.get(folder, 0) + n
                    out.rows += n
            out.new_columns += typed.new_columns
            out.rejected.update({staged[p]: why for p, why in typed.rejected.items()})
            con.close()
            m.schema = typed.schema or m.schema  # the next batch types against this one
    return out


__all__ = ["ingest", "dry_run", "IngestResult", "DryRun", "Progress"]
