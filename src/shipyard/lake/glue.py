"""The Glue Data Catalog side of athena.py: a Hive table in symlink format over the listings.

`register` creates the database if missing, creates or updates the table (the lake's schema as
it widens) and adds the partitions Glue lacks, each pointing at its listing folder
`_symlink_format_manifest/<partition>/`. All calls go through shipyard.aws.
"""

from __future__ import annotations

from typing import Any

from shipyard.aws import aws_errors, client, error_code, paginate
from shipyard.lake import schema as sch
from shipyard.lake.athena import SYMLINK_PREFIX, write_listings
from shipyard.lake.config import Dataset, get_dataset
from shipyard.lake.manifest import Manifest, read_manifest
from shipyard.lake.read import NULL_PARTITION, lake_columns, partition_dir, partition_names
from shipyard.settings import Settings
from shipyard.store import open_store

INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def _storage(location: str, cols: dict[str, Any]) -> dict[str, Any]:
    return {
        "Columns": [{"Name": n, "Type": sch.to_hive(t)} for n, t in cols.items()],
        "Location": location, "InputFormat": INPUT_FORMAT, "OutputFormat": OUTPUT_FORMAT,
        "SerdeInfo": {"SerializationLibrary": SERDE},
    }


def _values(partition: dict[str, str | None], names: list[str]) -> list[str]:
    return [NULL_PARTITION if partition.get(n) is None else str(partition[n]) for n in names]


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
