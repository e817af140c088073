"""Publishing a batch's Parquet files into the lake under new, unique keys.

Files become visible to readers only when the manifest that lists them is committed
(manifest.commit, the runner's last step); until then they are orphans that the next writer
removes. Keys are `<partition folders>/part-<txn>-<n>.parquet`, spelled by read.partition_dir
whichever engine wrote them.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any, Iterable

import duckdb

from shipyard.lake.athena import write_listings
from shipyard.lake.config import Dataset
from shipyard.lake.manifest import Manifest
from shipyard.lake.read import parse_partition_path, partition_dir, s3_filesystem
from shipyard.lake.sql import lit
from shipyard.settings import get_settings
from shipyard.store import ObjectStore

log = logging.getLogger(__name__)

# Test hook for a real crash (`[lake] crash_after_files`): the writer SIGKILLs itself after
# publishing N data files, before the manifest commit (tests/lake/test_crash.py).
CRASH_ENV = "SHIPYARD_LAKE__CRASH_AFTER_FILES"


def _key(rel_dir: str, txn: str, n: int) -> tuple[str, dict[str, str | None]]:
    partition = parse_partition_path(rel_dir)
    folder = partition_dir(partition)
    return (folder + "/" if folder else "") + f"part-{txn}-{n:05d}.parquet", partition


def _maybe_crash(published: int) -> None:
    crash_after = get_settings().lake.crash_after_files
    if crash_after is not None and published >= crash_after:
        log.warning("%s=%s: killing this process before the manifest commit", CRASH_ENV, crash_after)
        os.kill(os.getpid(), signal.SIGKILL)


def _visible(name: str) -> bool:
    return name.endswith(".parquet") and not name.startswith((".", "_"))


def _footer_rows(path: Path) -> int:
    con = duckdb.connect()
    try:
        return int(con.execute(f"SELECT num_rows FROM parquet_file_metadata({lit(str(path))})").fetchone()[0])
    finally:
        con.close()


def publish(lake: ObjectStore, outdir: Path, txn: str,
            rows_by_file: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Put every Parquet file under `outdir` into the lake; returns manifest entries. Row counts
    come from the engine when it reported them (DuckDB's RETURN_STATS), else from the footers."""
    entries = []
    files = sorted(p for p in outdir.rglob("*.parquet") if _visible(p.name))
    known = {str(Path(k).resolve()): v for k, v in (rows_by_file or {}).items()}
    for n, path in enumerate(files):
        rel_dir = path.parent.relative_to(outdir).as_posix()
        key, partition = _key("" if rel_dir == "." else rel_dir, txn, n)
        rows = known.get(str(path.resolve()))
        if rows is None:
            rows = _footer_rows(path)
        with open(path, "rb") as f:
            lake.put(key, f)
        entries.append({"key": key, "partition": partition, "rows": rows,
                        "bytes": path.stat().st_size, "txn": txn})
        _maybe_crash(len(entries))
    return entries


def publish_staged(lake: ObjectStore, prefix: str, txn: str) -> list[dict[str, Any]]:
    """Like publish, for files an engine wrote into the lake's store under `prefix`
    (`_shipyard/staging/<txn>/`, hidden from Hive/Athena): moved server-side to their keys."""
    entries = []
    infos = [i for i in lake.list(prefix + "/") if _visible(i.key.rsplit("/", 1)[-1])]
    s3fs = None
    for n, info in enumerate(sorted(infos, key=lambda i: i.key)):
        rel = info.key[len(prefix) + 1:]
        key, partition = _key(rel.rsplit("/", 1)[0] if "/" in rel else "", txn, n)
        lp = lake.local_path(info.key)
        if lp is not None:
            rows = _footer_rows(lp)
        else:  # footer only, by byte range
            import pyarrow.parquet as pq  # deferred: start-up cost (only Spark on a cluster gets here)

            s3fs = s3fs or s3_filesystem()
            with s3fs.open_input_file(lake.uri(info.key)[len("s3://"):]) as f:
                rows = pq.ParquetFile(f).metadata.num_rows
        lake.move(info.key, key)
        entries.append({"key": key, "partition": partition, "rows": rows, "bytes": info.size, "txn": txn})
        _maybe_crash(len(entries))
    for leftover in list(lake.list(prefix + "/")):  # _SUCCESS, .crc
        lake.delete(leftover.key)
    return entries


def after_commit(ds: Dataset, lake: ObjectStore, m: Manifest, folders: Iterable[str]) -> None:
    """Right after a commit: the touched partitions' listings, then (when the dataset names a
    Glue database) the Glue table and any new partition."""
    write_listings(lake, m, folders)
    if ds.config.glue_database:
        from shipyard.lake.glue import register  # deferred: start-up cost (boto3), only with Glue

        register(ds, glue_database=ds.config.glue_database, table=ds.config.glue_table,
                 manifest=m, listings=False)
