"""The DuckDB engine: one machine, streaming, spilling to disk past `[lake] memory_limit`."""

from __future__ import annotations

import logging
import time
from typing import Any

import duckdb

from shipyard.lake import strict
from shipyard.lake.config import Dataset
from shipyard.lake.engines.base import Batch, Written, unused_name
from shipyard.lake.read import register_lake
from shipyard.lake.rawfiles import read_json_sql
from shipyard.lake.sql import lit, q
from shipyard.settings import LakeSettings

log = logging.getLogger(__name__)


def time_expr(ds: Dataset, t: Any, col: str) -> str:
    """SQL for the event time as a UTC timestamp."""
    c = q(col)
    if ds.config.time_unit == "s" and t in ("BIGINT", "DOUBLE"):
        return f"to_timestamp({c})"
    if ds.config.time_unit == "ms" and t in ("BIGINT", "DOUBLE"):
        return f"to_timestamp({c} / 1000.0)"
    return f"CAST({c} AS TIMESTAMPTZ)"


def partition_exprs(ds: Dataset, lake_types: dict[str, Any]) -> dict[str, str]:
    """Partition column -> expression, as text (the folder's value). NULL stays NULL: DuckDB
    writes it as Hive's __HIVE_DEFAULT_PARTITION__ folder and escapes a literal value that
    starts with '_', so a NULL and a string never share a folder."""
    out = {}
    ts = time_expr(ds, lake_types[ds.config.time], ds.config.time)
    for p in ds.partitions:
        if p.kind == "dt":
            out[p.name] = f"strftime({ts}, '%Y-%m-%d')"
        elif p.kind == "hour":
            out[p.name] = f"strftime({ts}, '%H')"
        elif p.kind == "field":
            out[p.name] = f"CAST({q(p.field)} AS VARCHAR)"
        else:
            # md5 so Spark computes the same bucket: conv(substr(md5(x), 1, 8), 16, 10) % N.
            out[p.name] = (f"CAST(CAST(('0x' || left(md5(CAST({q(p.field)} AS VARCHAR)), 8)) AS UBIGINT) "
                           f"% {p.buckets} AS VARCHAR)")
    return out


def copy_options(ds: Dataset, txn: str, partitioned: bool) -> str:
    c = ds.config
    opts = ["FORMAT parquet", f"COMPRESSION {c.compression}"]
    if partitioned:
        opts += [f"FILE_SIZE_BYTES '{c.file_size_mb}MB'", f"FILENAME_PATTERN 'part-{txn}-{{i}}'"]
    return ", ".join(opts)


class DuckDBEngine:
    name = "duckdb"

    def __init__(self, settings: LakeSettings | None = None) -> None:
        self.settings = settings  # the runner's connection already carries memory and threads

    def write(self, con: Any, b: Batch) -> Written:
        ds, c = b.ds, b.ds.config
        t0 = time.perf_counter()
        parts = partition_exprs(ds, b.lake_types)
        pnames = list(parts)
        field_parts = {p.field for p in ds.partitions if p.kind == "field"}
        taken = set(b.raw_schema) | set(b.lake_types)
        fcol = unused_name("__file", taken)
        select = [f"{q(r)} AS {q(c.rename.get(r, r))}" for r in b.raw_schema
                  if c.rename.get(r, r) not in field_parts]
        # Field partitions: the derived text column replaces the raw one (it lives in the path).
        select += [f"{e} AS {q(n)}" for n, e in parts.items()]
        # One pass over the raw bytes: typed rows with their partition values and file.
        if b.strict_types is None:
            source = read_json_sql(b.paths, b.raw_schema, filename=fcol)
        else:
            source = f"({_strict_rows(con, b, f'0 AS {q(fcol)}')})"
        _run(con, b, f"CREATE OR REPLACE TEMP TABLE batch AS SELECT {', '.join(select)}, {q(fcol)} FROM {source}")
        counts = con.execute(f"SELECT {', '.join(q(p) for p in pnames) or '1'}, count(*) "
                             "FROM batch GROUP BY ALL").fetchall()
        rows_read = sum(r[-1] for r in counts)
        touched = {tuple(r[:-1]) for r in counts}
        t1 = time.perf_counter()
        existing = b.manifest.files_in(touched, pnames) if pnames else list(b.manifest.files)
        where = ""
        if existing:
            # Only the id and partition columns of the touched partitions are read.
            register_lake(con, "existing", ds, b.lake, b.manifest, existing, columns=c.id + pnames)
            on = " AND ".join([f"u.{q(k)} = e.{q(k)}" for k in c.id] +
                              [f"u.{q(k)} IS NOT DISTINCT FROM e.{q(k)}" for k in pnames])
            where = f"WHERE EXISTS (SELECT 1 FROM existing e WHERE {on})"  # in the lake already
        # Dedupe within the batch: the first file wins; ties within a file are identical
        # events re-sent. An event without an id (NULL or missing) is never a duplicate. Only
        # the rows whose id occurs more than once (a small table of ids) go through the window.
        ids = [q(i) for i in c.id]
        dups = "batch_dups"
        con.execute(f"CREATE OR REPLACE TEMP TABLE batch_dup_ids AS SELECT {', '.join(ids)} FROM batch "
                    f"WHERE {' AND '.join(f'{i} IS NOT NULL' for i in ids)} GROUP BY ALL HAVING count(*) > 1")
        in_dups = f"(SELECT 1 FROM batch_dup_ids d WHERE {' AND '.join(f'd.{i} = u.{i}' for i in ids)})"
        by_id = ", ".join(f"u.{i}" for i in ids)
        # The copies: one probe of the batch, then only these few rows are looked at again.
        h = ", hash(u) AS h" if b.strict_types is not None else ""  # for the check below
        con.execute(f"CREATE OR REPLACE TEMP TABLE {q(dups)} AS SELECT u.rowid AS r, {by_id}{h}, "
                    f"row_number() OVER (PARTITION BY {by_id} ORDER BY u.{q(fcol)}) AS n "
                    f"FROM batch u WHERE EXISTS {in_dups}")
        if b.strict_types is not None:
            # One file has no file order, so "the first file wins" cannot pick: fine when the
            # copies of an id are the same event; otherwise the batch goes the old way.
            differ = con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {q(dups)} u GROUP BY {by_id} "
                                 "HAVING min(h) <> max(h))").fetchone()[0]
            if differ:
                raise strict.NotStrict(f"{differ} id(s) sent twice with different content")
        # The rows that go are deleted (a few: the later copies, the events the lake has), so
        # the write below is one plain scan of the batch.
        con.execute(f"DELETE FROM batch WHERE rowid IN (SELECT r FROM {q(dups)} WHERE n > 1)")
        if where:
            con.execute(f"DELETE FROM batch WHERE rowid IN (SELECT u.rowid FROM batch u {where})")
        rows = f"SELECT * EXCLUDE ({q(fcol)}) FROM batch"
        order = f"ORDER BY {', '.join(q(s) for s in c.sort_by)}" if c.sort_by else ""
        b.outdir.mkdir(parents=True, exist_ok=True)
        if pnames:
            target = str(b.outdir)
            opts = copy_options(ds, b.txn, True) + f", PARTITION_BY ({', '.join(q(p) for p in pnames)})"
        else:
            target = str(b.outdir / f"part-{b.txn}-0.parquet")
            opts = copy_options(ds, b.txn, False)
        files = con.execute(
            f"COPY ({rows} {order}) TO {lit(target)} ({opts}, RETURN_STATS)").fetchall()
        con.execute(f"DROP TABLE {q(dups)}")
        con.execute("DROP TABLE batch_dup_ids")
        con.execute("DROP TABLE batch")
        rows = {str(f[0]): int(f[1]) for f in files}
        return Written(int(rows_read), -1, sum(rows.values()), rows,
                       {"read": t1 - t0, "dedupe+anti-join+write": time.perf_counter() - t1})

    def close(self) -> None:
        pass


def _run(con: Any, b: Batch, sql: str) -> None:
    """Run the batch read; with strict types, a refusal (a value, key or line that does not fit
    the sampled types) is NotStrict: the runner then types the batch over every row."""
    try:
        con.execute(sql)
    except duckdb.OutOfMemoryException:
        raise
    except duckdb.Error as exc:
        if b.strict_types is None:
            raise
        log.debug("the strict read refused the batch: %s", exc)
        raise strict.NotStrict(strict.refusal(str(exc))) from None


def _strict_rows(con: Any, b: Batch, extra: str) -> str:
    """The batch's joined file (strict.Joined) under its probe, checked to give exactly the types."""
    types = b.strict_types or {}
    marker = strict.new_marker(set(types))
    if b.joined is None:
        raise strict.NotStrict("no joined file")
    b.joined.write_probe(strict.probe_line(types, marker))
    path = b.joined.path
    try:
        rel = con.sql(f"SELECT * FROM {strict.read_sql(str(path))} LIMIT 0")
    except duckdb.Error as exc:
        log.debug("the joined file could not be bound: %s", exc)
        raise strict.NotStrict(strict.refusal(str(exc))) from None
    got = dict(zip(rel.columns, (str(t) for t in rel.types)))
    want = dict(zip(types, strict.expected(types)), **{marker: "BOOLEAN"})
    if got != want:
        raise strict.NotStrict("the probe was not typed as the schema")
    return strict.select_sql(types, marker, str(path), extra)


def count_by_partition(con: Any, b: Batch) -> dict[tuple, int]:
    """Rows per partition of a batch's raw files, before any dedupe (`ingest --dry-run`)."""
    parts = partition_exprs(b.ds, b.lake_types)
    rename = b.ds.config.rename
    cols = ", ".join(f"{q(r)} AS {q(rename.get(r, r))}" for r in b.raw_schema)
    keys = ", ".join(f"{e} AS {q(n)}" for n, e in parts.items()) or "1 AS __all"
    rows = con.execute(
        f"SELECT {keys}, count(*) FROM (SELECT {cols} FROM {read_json_sql(b.paths, b.raw_schema)}) "
        f"GROUP BY ALL").fetchall()
    return {tuple(r[:-1]) if parts else (): int(r[-1]) for r in rows}
