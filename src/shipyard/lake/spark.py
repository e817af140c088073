"""The Spark engine: the same ingest for data that outgrows one machine (`--engine spark`).

Only the heavy step runs in Spark (read with the exact schema, partition columns, dedupe within
the batch and against the touched partitions, partitioned snappy Parquet). Typing (DuckDB's
schema detection over the batch), publishing and the manifest commit are shared with the DuckDB
engine, so both engines write the same lake and follow the same crash rules.

Locally this is pyspark in local mode. On EMR / Glue the same function runs with the cluster's
SparkSession (see docs/lake.md); there raw and lake paths are s3:// URIs that the cluster reads
itself. Here S3 objects go through the ObjectStore (staged on local disk) because a local
pyspark has no hadoop-aws jars.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from shipyard.lake import schema as sch
from shipyard.lake.ingest import DEFAULT_PARTITION, Batch


def session(master: str | None = None) -> Any:
    """A local SparkSession with settings that keep small jobs quick and output comparable."""
    from pyspark.sql import SparkSession

    master = master or os.environ.get("SHIPYARD_LAKE_SPARK_MASTER", "local[2]")
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
        .config("spark.sql.parquet.compression.codec", "snappy")
        # Microsecond timestamps (not INT96): what DuckDB, Athena and Trino read natively.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        # Partition values stay text, as in DuckDB's view and the Athena DDL.
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def shared_paths(spark: Any) -> bool:
    """Whether executors read and write through store URIs (a cluster) rather than the
    driver's local disk. SHIPYARD_LAKE_SPARK_PATHS=uri|local forces it (tests)."""
    mode = os.environ.get("SHIPYARD_LAKE_SPARK_PATHS")
    if mode:
        return mode == "uri"
    return not spark.sparkContext.master.startswith("local")


def _cluster_uri(uri: str) -> str:
    """EMR's EMRFS reads s3://; open-source Spark's hadoop-aws wants s3a:// (set
    SHIPYARD_LAKE_SPARK_S3_SCHEME=s3a there)."""
    scheme = os.environ.get("SHIPYARD_LAKE_SPARK_S3_SCHEME", "s3")
    return scheme + uri[2:] if uri.startswith("s3://") and scheme != "s3" else uri


def spark_write(spark: Any, con: Any, b: Batch) -> tuple[int, int, int]:
    """(rows read, rows after in-batch dedupe, rows written); Parquet lands in b.outdir."""
    import pyarrow.parquet as pq
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ds, c = b.ds, b.ds.config
    uuids = [n for n, t in b.raw_schema.items() if sch.has_uuid(t)]
    if uuids:
        from shipyard.errors import ConfigError

        raise ConfigError(
            f"dataset {ds.name!r}: the Spark engine cannot write Parquet UUID columns ({', '.join(uuids)})",
            hint="use --engine duckdb, or drop the UUID declaration from "
            f"[lake.datasets.{ds.name}.columns] (UUIDs are then kept as text)",
        )
    shared = shared_paths(spark)
    ddl = ", ".join(f"`{n}` {sch.to_spark(t)}" for n, t in b.raw_schema.items())
    df = (spark.read.schema(ddl).option("mode", "FAILFAST")
          .option("timestampFormat", "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS][.SSS][XXX][X]")
          .json([_cluster_uri(u) for u in b.raw_uris] if shared else b.paths))
    df = df.withColumn("__file", F.col("_metadata.file_path"))
    for raw_name, lake_name in c.rename.items():
        if raw_name in b.raw_schema:
            df = df.withColumnRenamed(raw_name, lake_name)
    lake_types = {c.rename.get(r, r): t for r, t in b.raw_schema.items()}
    tcol, tt = F.col(f"`{c.time}`"), lake_types[c.time]
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
            e = F.col(f"`{p.field}`").cast("string")
        else:  # same md5-based bucket as the DuckDB engine
            e = (F.conv(F.substring(F.md5(F.col(f"`{p.field}`").cast("string")), 1, 8), 16, 10)
                 .cast("long") % p.buckets).cast("string")
        df = df.withColumn(p.name, F.coalesce(e, F.lit(DEFAULT_PARTITION)))
        pnames.append(p.name)
    df = df.persist()
    rows_read = df.count()
    w = Window.partitionBy(*[F.col(f"`{i}`") for i in c.id]).orderBy("__file")
    uniq = df.withColumn("__rn", F.row_number().over(w)).where("__rn = 1").drop("__rn", "__file")
    uniq = uniq.persist()
    rows_unique = uniq.count()
    touched = {tuple(r) for r in uniq.select(*pnames).distinct().collect()} if pnames else set()
    existing = b.manifest.files_in(touched, pnames) if pnames else list(b.manifest.files)
    if existing and shared:
        paths = [_cluster_uri(b.lake.uri(f["key"])) for f in existing]
        root = _cluster_uri(b.lake.url)
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
               .select(*[F.col(f"`{k}`") for k in c.id],
                       # Spark reads a __HIVE_DEFAULT_PARTITION__ folder back as NULL.
                       *[F.coalesce(F.col(f"`{p}`"), F.lit(DEFAULT_PARTITION)).alias(p) for p in pnames]))
        cond = None
        for k in c.id + pnames:
            eq = uniq[k].eqNullSafe(old[k])
            cond = eq if cond is None else cond & eq
        uniq = uniq.join(old, cond, "left_anti")
    out = uniq.repartition(*pnames) if pnames else uniq.coalesce(1)
    if c.sort_by:
        out = out.sortWithinPartitions(*c.sort_by)
    writer = out.write.mode("overwrite").option("compression", "snappy")
    if pnames:
        writer = writer.partitionBy(*pnames)
    if shared:
        # Into the lake's own store, under a hidden staging prefix; publish_staged moves the
        # files to their keys (server-side on S3) and counts rows from their footers.
        b.staged_prefix = f"_shipyard/staging/{b.txn}"
        writer.parquet(_cluster_uri(b.lake.uri(b.staged_prefix)))
    else:
        writer.parquet(str(b.outdir))
    df.unpersist()
    uniq.unpersist()
    if shared:
        return rows_read, rows_unique, -1
    written = sum(pq.ParquetFile(p).metadata.num_rows for p in Path(b.outdir).rglob("*.parquet"))
    return rows_read, rows_unique, written
