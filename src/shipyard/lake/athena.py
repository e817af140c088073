"""What Athena (through the Glue Data Catalog) reads: only the committed state.

Design (docs/lake.md, "Athena and Glue"): the Glue table is a Hive table in *symlink* format,
as Delta Lake does for Athena: each partition's location is a folder
`_symlink_format_manifest/<partition>/` that holds one object, `manifest`, listing the
partition's committed Parquet files (one URI per line). Athena reads exactly those files
(`SymlinkTextInputFormat` + the Parquet SerDe), never the data folders themselves, so it never
sees a file a running ingest has published but not committed, nor the old and new files of a
compaction together. The listing objects are written from the manifest right after each commit
(ingest, compact, forget): one atomic PUT per touched partition, so each partition flips from
its old file set to its new one at once. Why not the alternatives:
- versioned partition folders would copy every file of a touched partition into a new folder
  on every ingest (the day being written is rewritten each hour);
- Iceberg (pyiceberg) needs the partition values inside the data files and rewrites the lake's
  layout; `lake query` and Spark would then read through Iceberg too. The symlink listings
  leave the Hive layout that DuckDB and Spark read unchanged.
`lake query` (DuckDB) and the Spark job read the same state through the manifest.
"""

from __future__ import annotations

from typing import Iterable

from shipyard.lake.manifest import Manifest
from shipyard.lake.read import partition_dir
from shipyard.store import ObjectStore

SYMLINK_PREFIX = "_symlink_format_manifest/"


def listing_key(folder: str) -> str:
    return SYMLINK_PREFIX + (folder + "/" if folder else "") + "manifest"


def write_listings(lake: ObjectStore, m: Manifest, folders: Iterable[str] | None = None) -> int:
    """Write the listing of each partition folder in `folders` (all when None) from the
    committed manifest `m`; a partition left without files gets an empty listing."""
    by: dict[str, list[str]] = {}
    for f in m.files:
        by.setdefault(partition_dir(f["partition"]), []).append(lake.uri(f["key"]))
    todo = set(by) if folders is None else set(folders)
    for folder in sorted(todo):
        uris = sorted(by.get(folder, []))
        lake.put(listing_key(folder), ("".join(u + "\n" for u in uris)).encode())
    return len(todo)
