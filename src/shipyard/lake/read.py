"""Reading the lake from DuckDB: the manifest's files as one relation, local or S3.

Local lakes: `read_parquet([...files], hive_partitioning=true)`; DuckDB prunes files by the
partition filter (the values are in the paths) and row groups by min/max statistics.

S3 lakes: DuckDB's S3 support lives in the httpfs extension, which DuckDB downloads from
extensions.duckdb.org on first use (https://duckdb.org/docs/extensions/httpfs/overview) and
that is not always reachable (air-gapped runners, this project's CI). pyarrow ships S3 in its
wheel, so an S3 lake is opened as a pyarrow dataset over the same endpoint and credentials
(AWS_ENDPOINT_URL, the standard chain) and handed to DuckDB, which pushes projections and
filters into it: partition pruning by path, column and row-group reads by byte range.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote, unquote, urlparse

import duckdb

from shipyard.errors import ConfigError
from shipyard.lake import schema as sch
from shipyard.lake.config import Dataset
from shipyard.lake.manifest import Manifest
from shipyard.lake.sql import lit, q, sql_list
from shipyard.settings import LakeSettings, get_settings
from shipyard.store import ObjectStore

# Hive's folder for a NULL partition value (Spark, Athena and DuckDB write and read it so).
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


def partition_names(ds: Dataset) -> list[str]:
    return [p.name for p in ds.partitions]


def lake_columns(ds: Dataset, m: Manifest) -> dict[str, Any]:
    """Columns inside the Parquet files (lake names -> type); partition columns excluded."""
    field_parts = {p.field for p in ds.partitions if p.kind == "field"}
    out = {}
    for raw_name, t in m.schema.items():
        name = ds.config.rename.get(raw_name, raw_name)
        if name in field_parts or t == sch.NULL:
            continue
        out[name] = t
    return out


def parse_partition_path(rel_dir: str) -> dict[str, str | None]:
    """{column: value} of a folder path; the unescaped NULL_PARTITION folder is None."""
    out: dict[str, str | None] = {}
    for seg in rel_dir.split("/"):
        if "=" in seg:
            k, v = seg.split("=", 1)
            out[unquote(k)] = None if v == NULL_PARTITION else unquote(v)
    return out


def partition_dir(partition: dict[str, str | None]) -> str:
    """The folder for a partition, spelled the same whichever engine wrote it: values are
    %-escaped like Hive; a leading '_' too (as DuckDB does), since Hive, Spark and Athena
    skip paths that start with '_' or '.', and so that a literal '__HIVE_DEFAULT_PARTITION__'
    never shares the folder of NULL."""
    segs = []
    for k, v in partition.items():
        if v is None:
            segs.append(f"{k}={NULL_PARTITION}")
            continue
        enc = quote(str(v), safe="-.")
        if enc.startswith("_"):
            enc = "%5F" + enc[1:]
        segs.append(f"{k}={enc}")
    return "/".join(segs)


def s3_filesystem() -> Any:
    """pyarrow's S3 filesystem on the endpoint boto3 uses (AWS_ENDPOINT_URL[_S3])."""
    from pyarrow import fs  # deferred: start-up cost (pyarrow is only needed for S3 lakes)

    kw: dict[str, Any] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        u = urlparse(endpoint)
        kw["endpoint_override"] = u.netloc or u.path
        kw["scheme"] = u.scheme or "https"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kw["region"] = region
    return fs.S3FileSystem(**kw)


def _s3_path(store: ObjectStore, key: str) -> str:
    return store.uri(key)[len("s3://"):]


def register_lake(con: Any, view: str, ds: Dataset, store: ObjectStore, m: Manifest,
                  files: list[dict[str, Any]] | None = None, columns: list[str] | None = None) -> None:
    """Make `view` the dataset's rows (data columns + partition columns as VARCHAR)."""
    files = m.files if files is None else files
    parts = partition_names(ds)
    cols = lake_columns(ds, m)
    if not files:
        sel = [f"CAST(NULL AS {sch.to_sql(t)}) AS {q(n)}" for n, t in cols.items()]
        sel += [f"CAST(NULL AS VARCHAR) AS {q(p)}" for p in parts]
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q(view)} AS SELECT {', '.join(sel) or '1 AS _'} WHERE false")
        return
    local = [store.local_path(f["key"]) for f in files]
    if all(p is not None for p in local):
        hive_types = "{" + ", ".join(f"{lit(p)}: 'VARCHAR'" for p in parts) + "}"
        opts = "union_by_name=true"
        if parts:
            opts += f", hive_partitioning=true, hive_types={hive_types}"
        proj = ", ".join(q(c) for c in columns) if columns else "*"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q(view)} AS SELECT {proj} FROM "
                    f"read_parquet({sql_list([str(p) for p in local])}, {opts})")
        return
    import pyarrow as pa  # deferred: start-up cost (pyarrow is only needed for S3 lakes)
    import pyarrow.dataset as pads  # deferred: start-up cost (as above)

    fields = [pa.field(n, sch.to_arrow(t)) for n, t in cols.items()]
    part_schema = pa.schema([pa.field(p, pa.string()) for p in parts])
    base = _s3_path(store, "x")[:-1].rstrip("/")
    dataset = pads.dataset(
        [_s3_path(store, f["key"]) for f in files],
        schema=pa.schema(fields + list(part_schema)),
        format="parquet",
        filesystem=s3_filesystem(),
        # NULL_PARTITION reads as NULL, as DuckDB's read_parquet does on local lakes.
        partitioning=pads.HivePartitioning(part_schema, null_fallback=NULL_PARTITION) if parts else None,
        partition_base_dir=base,
    )
    con.register(f"__arrow_{view}", dataset)
    proj = ", ".join(q(c) for c in columns) if columns else "*"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {q(view)} AS SELECT {proj} FROM {q('__arrow_' + view)}")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def connect(spill_dir: str | None = None, settings: LakeSettings | None = None,
            external_access: bool = True) -> Any:
    """A DuckDB connection; `[lake] memory_limit` (e.g. "2GB") caps it, and past the cap
    DuckDB spills to `spill_dir` (https://duckdb.org/docs/guides/performance/how_to_tune_workloads).
    external_access=False: SQL run on it cannot read or write files or URLs outside what was
    registered before the switch (https://duckdb.org/docs/operations_manual/securing_duckdb)."""
    s = settings or get_settings().lake
    con = duckdb.connect()
    # Event dates are UTC dates: the same day folder whatever the machine's zone.
    con.execute("SET TimeZone='UTC'")
    con.execute(f"SET threads={int(s.threads or available_cores())}")
    if spill_dir:
        con.execute(f"SET temp_directory={lit(spill_dir)}")
    if s.memory_limit:
        try:
            con.execute(f"SET memory_limit={lit(s.memory_limit)}")
        except duckdb.Error as exc:
            raise ConfigError(f"lake.memory_limit {s.memory_limit!r}: {str(exc).splitlines()[0]}",
                              hint='use a size such as "512MB" or "4GB"') from None
    return con
