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

from typing import Any, Iterable

from shipyard.aws import aws_errors, client, error_code, paginate
from shipyard.lake import schema as sch
from shipyard.lake.config import Dataset, get_dataset
from shipyard.lake.manifest import Manifest, read_manifest
from shipyard.lake.read import NULL_PARTITION, lake_columns, partition_dir, partition_names
from shipyard.settings import Settings
from shipyard.store import ObjectStore, open_store

SYMLINK_PREFIX = "_symlink_format_manifest/"
INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


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


def _storage(location: str, cols: dict[str, Any]) -> dict[str, Any]:
    return {
        "Columns": [{"Name": n, "Type": sch.to_hive(t)} for n, t in cols.items()],
        "Location": location, "InputFormat": INPUT_FORMAT, "OutputFormat": OUTPUT_FORMAT,
        "SerdeInfo": {"SerializationLibrary": SERDE},
    }


def _values(partition: dict[str, str | None], names: list[str]) -> list[str]:
    return [NULL_PARTITION if partition.get(n) is None else str(partition[n]) for n in names]


def after_commit(ds: Dataset, lake: ObjectStore, m: Manifest, folders: Iterable[str]) -> None:
    """Right after a commit: the touched partitions' listings, then (when the dataset names a
    Glue database) the Glue table and any new partition."""
    write_listings(lake, m, folders)
    if ds.config.glue_database:
        register(ds, glue_database=ds.config.glue_database, table=ds.config.glue_table,
                 manifest=m, listings=False)


def register(name: str | Dataset, *, glue_database: str, table: str | None = None,
             manifest: Manifest | None = None, listings: bool = True,
             settings: Settings | None = None) -> dict[str, Any]:
    """Create or update the Glue table (schema evolution included) and add missing partitions."""
    ds = name if isinstance(name, Dataset) else get_dataset(name, settings)
    lake = open_store(ds.lake_url)
    m = manifest or read_manifest(lake, ds.name)
    cols = lake_columns(ds, m)
    if not cols:
        return {"table": None, "partitions_added": 0}
    if listings:
        write_listings(lake, m)
    tname = table or ds.name
    base = lake.uri(SYMLINK_PREFIX)
    parts = partition_names(ds)
    glue = client("glue")
    with aws_errors(f"Glue database {glue_database}"):
        try:
            glue.get_database(Name=glue_database)
        except Exception as exc:
            if error_code(exc) != "EntityNotFoundException":
                raise
            glue.create_database(DatabaseInput={"Name": glue_database})
    tinput = {
        "Name": tname, "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE",
                       "shipyard.lake.dataset": ds.name, "shipyard.lake.version": str(m.version)},
        "PartitionKeys": [{"Name": p, "Type": "string"} for p in parts],
        "StorageDescriptor": _storage(base, cols),
    }
    with aws_errors(f"Glue table {glue_database}.{tname}"):
        try:
            glue.get_table(DatabaseName=glue_database, Name=tname)
            glue.update_table(DatabaseName=glue_database, TableInput=tinput)
            created = False
        except Exception as exc:
            if error_code(exc) != "EntityNotFoundException":
                raise
            glue.create_table(DatabaseName=glue_database, TableInput=tinput)
            created = True
    added = 0
    if parts:
        with aws_errors(f"Glue partitions of {glue_database}.{tname}"):
            have = {tuple(p["Values"]) for p in paginate(glue, "get_partitions", "Partitions",
                                                         DatabaseName=glue_database, TableName=tname)}
            want: dict[tuple, dict[str, Any]] = {}
            for f in m.files:
                want[tuple(_values(f["partition"], parts))] = f["partition"]
            missing = [(v, p) for v, p in sorted(want.items()) if v not in have]
            for i in range(0, len(missing), 100):  # BatchCreatePartition takes up to 100
                glue.batch_create_partition(
                    DatabaseName=glue_database, TableName=tname,
                    PartitionInputList=[{"Values": list(v), "StorageDescriptor": _storage(
                        lake.uri(SYMLINK_PREFIX + partition_dir(p) + "/"), cols)} for v, p in missing[i:i + 100]])
            added = len(missing)
    return {"table": f"{glue_database}.{tname}", "created": created, "partitions_added": added,
            "columns": len(cols), "version": m.version}
