"""The Spark engine: the same ingest for data that outgrows one machine (`--engine spark`).

Only the heavy step runs in Spark (read with the exact schema, partition columns, dedupe within
the batch and against the touched partitions, partitioned Parquet). Typing (DuckDB's schema
detection over the batch), publishing and the manifest commit are the runner's, so both
engines write the same lake and follow the same crash rules.

pyspark is an optional heavy dependency: it is imported inside the functions that need it, so
the DuckDB path never pays for it.

Locally this is pyspark in local mode. On EMR / Glue the same function runs with the cluster's
SparkSession (see docs/lake.md); there raw and lake paths are s3:// URIs that the cluster reads
itself. Here S3 objects go through the ObjectStore (staged on local disk) because a local
pyspark has no hadoop-aws jars.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from shipyard.errors import ConfigError
from shipyard.lake import schema as sch
from shipyard.lake.manifest import STAGING_PREFIX
from shipyard.lake.engines.base import Batch, Written, unused_name
from shipyard.lake.sql import hive_ident
from shipyard.settings import LakeSettings


def session(master: str) -> Any:
    """A SparkSession; local masters get settings that keep small jobs quick."""
    from pyspark.sql import SparkSession  # optional heavy dependency (pyspark)

    builder = SparkSession.builder.master(master).appName("shipyard-lake")
    if master.startswith("local"):
        # Small local jobs: no UI, few shuffle partitions (the default 200 costs seconds).
        builder = (builder.config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.shuffle.partitions", "4")
                   # Local mode talks only to itself: keep the driver on loopback instead of
                   # the first interface's address (Spark's default, with a warning).
                   .config("spark.driver.bindAddress", "127.0.0.1")
                   .config("spark.driver.host", "127.0.0.1")
                   .config("spark.driver.extraJavaOptions", "-XX:+UseSerialGC"))
    builder = (
        builder
        .config("spark.sql.session.timeZone", "UTC")
        # Microsecond timestamps (not INT96): what DuckDB, Athena and Trino read natively.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        # Partition values stay text, as in DuckDB's view and the Athena DDL.
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


class SparkEngine:
    """`[lake] spark_master` picks the cluster; `spark_paths` = uri|local forces how executors
    see files (default: local disk on a local master, store URIs on a cluster);
    `spark_s3_scheme` = s3a for open-source Spark's hadoop-aws (EMRFS reads s3://)."""

    name = "spark"

    def __init__(self, settings: LakeSettings, spark: Any = None) -> None:
        self.settings = settings
        self._spark = spark

    @property
    def spark(self) -> Any:
        if self._spark is None:
            self._spark = session(self.settings.spark_master)
        return self._spark

    @property
    def shared(self) -> bool:
        mode = self.settings.spark_paths
        if mode:
            return mode == "uri"
        return not self.spark.sparkContext.master.startswith("local")

    def uri(self, uri: str) -> str:
        scheme = self.settings.spark_s3_scheme
        return scheme + uri[2:] if uri.startswith("s3://") and scheme != "s3" else uri

    def close(self) -> None:
        pass  # the session lives as long as the process (getOrCreate shares it)

    def write(self, con: Any, b: Batch) -> Written:
        return _write(self, b)


def _write(eng: SparkEngine, b: Batch) -> Written:
    """Read, partition, dedupe (batch + touched partitions) and write one batch in Spark."""
    from pyspark.sql import Window  # optional heavy dependency (pyspark)
    from pyspark.sql import functions as F  # optional heavy dependency (pyspark)

    spark, ds, c = eng.spark, b.ds, b.ds.config
    uuids = [n for n, t in b.raw_schema.items() if sch.has_uuid(t)]
    if uuids:
        raise ConfigError(
            f"dataset {ds.name!r}: the Spark engine cannot write Parquet UUID columns ({', '.join(uuids)})",
            hint="use --engine duckdb, or drop the UUID declaration from "
            f"[lake.datasets.{ds.name}.columns] (UUIDs are then kept as text)",
        )
    shared = eng.shared
    cluster_uri = eng.uri
    ddl = ", ".join(f"{hive_ident(n)} {sch.to_spark(t)}" for n, t in b.raw_schema.items())
    df = (spark.read.schema(ddl).option("mode", "FAILFAST")
          .option("timestampFormat", "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS][.SSS][XXX][X]")
          .json([cluster_uri(u) for u in b.raw_uris] if shared else b.paths))
    taken = set(b.raw_schema) | set(b.lake_types)
    fcol, rn = unused_name("__file", taken), unused_name("__rn", taken)
    df = df.withColumn(fcol, F.col("_metadata.file_path"))
    for raw_name, lake_name in c.rename.items():
        if raw_name in b.raw_schema:
            df = df.withColumnRenamed(raw_name, lake_name)
    lake_types = {c.rename.get(r, r): t for r, t in b.raw_schema.items()}
    tcol, tt = F.col(hive_ident(c.time)), lake_types[c.time]
    if c.time_unit == "s" and tt in ("BIGINT", "DOUBLE"):
        ts = F.timestamp_seconds(tcol)
    elif c.time_unit == "ms" and tt in ("BIGINT", "DOUBLE"):
        ts = F.timestamp_seconds(tcol / 1000.0)
    else:
        ts = tcol.cast("timestamp")
    pnames = []
    for p in ds.partitions:
        if p.kind == "dt":
            e = F.date_format(ts, "yyyy-MM-dd")
        elif p.kind == "hour":
            e = F.date_format(ts, "HH")
        elif p.kind == "field":
            e = F.col(hive_ident(p.field)).cast("string")
        else:  # same md5-based bucket as the DuckDB engine
            e = (F.conv(F.substring(F.md5(F.col(hive_ident(p.field)).cast("string")), 1, 8), 16, 10)
                 .cast("long") % p.buckets).cast("string")
        # NULL stays NULL: Spark writes Hive's __HIVE_DEFAULT_PARTITION__ folder for it.
        df = df.withColumn(p.name, e)
        pnames.append(p.name)
    df = df.persist()
    rows_read = df.count()
    w = Window.partitionBy(*[F.col(hive_ident(i)) for i in c.id]).orderBy(fcol)
    no_id = None
    for i in c.id:  # an event without an id is never a duplicate
        cond_ = F.col(hive_ident(i)).isNull()
        no_id = cond_ if no_id is None else no_id | cond_
    rank = F.when(no_id, F.lit(1)).otherwise(F.row_number().over(w))
    uniq = df.withColumn(rn, rank).where(F.col(hive_ident(rn)) == 1).drop(rn, fcol)
    uniq = uniq.persist()
    rows_unique = uniq.count()
    touched = {tuple(r) for r in uniq.select(*pnames).distinct().collect()} if pnames else set()
    existing = b.manifest.files_in(touched, pnames) if pnames else list(b.manifest.files)
    if existing and shared:
        paths = [cluster_uri(b.lake.uri(f["key"])) for f in existing]
        root = cluster_uri(b.lake.url)
    elif existing:
        base = b.workdir / "existing"
        paths = []
        for f in existing:
            lp = b.lake.local_path(f["key"])
            if lp is None:  # S3 lake on a local Spark: stage through the ObjectStore
                lp = base / f["key"]
                lp.parent.mkdir(parents=True, exist_ok=True)
                with b.lake.open(f["key"]) as src, open(lp, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            paths.append(str(lp))
        root = str(base) if b.lake.local_path(existing[0]["key"]) is None else str(
            b.lake.local_path("x").parent)
    if existing:
        old = (spark.read.option("basePath", root).parquet(*paths)
               .select(*[F.col(hive_ident(k)) for k in c.id + pnames]))
        cond = None
        for k in c.id + pnames:  # ids: NULL never matches; partitions: NULL matches NULL
            eq = uniq[k] == old[k] if k in c.id else uniq[k].eqNullSafe(old[k])
            cond = eq if cond is None else cond & eq
        uniq = uniq.join(old, cond, "left_anti")
    out = uniq.repartition(*pnames) if pnames else uniq.coalesce(1)
    if c.sort_by:
        out = out.sortWithinPartitions(*c.sort_by)
    writer = out.write.mode("overwrite").option("compression", c.compression)
    if pnames:
        writer = writer.partitionBy(*pnames)
    if shared:
        # Into the lake's own store, under a hidden staging prefix; publish_staged moves the
        # files to their keys (server-side on S3) and counts rows from their footers.
        b.staged_prefix = STAGING_PREFIX + b.txn
        writer.parquet(cluster_uri(b.lake.uri(b.staged_prefix)))
    else:
        writer.parquet(str(b.outdir))
    df.unpersist()
    uniq.unpersist()
    if shared:
        return Written(rows_read, rows_unique, -1)
    import pyarrow.parquet as pq  # deferred: start-up cost (the Spark engine only)

    written = sum(pq.ParquetFile(p).metadata.num_rows for p in Path(b.outdir).rglob("*.parquet"))
    return Written(rows_read, rows_unique, written)
