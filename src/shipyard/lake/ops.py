"""Reading and maintaining a lake: query, stats, compact, ddl."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import duckdb

from shipyard.errors import ConfigError, InputError
from shipyard.lake import schema as sch
from shipyard.lake.config import get_dataset, load_datasets
from shipyard.lake.engines.duck import copy_options
from shipyard.lake.notices import notify
from shipyard.lake.manifest import (
    check_compatible, commit, new_txn, now_iso, read_manifest, remove_orphans,
)
from shipyard.lake.publish import after_commit, publish
from shipyard.lake.read import connect, lake_columns, partition_dir, partition_names, register_lake
from shipyard.lake.sql import hive_ident, lit, q
from shipyard.settings import Settings
from shipyard.store import is_s3_url, open_store

Progress = Callable[[str], None]


# --- query --------------------------------------------------------------------------------

@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    output: str | None = None
    row_count: int = 0


def open_lake(datasets: list[str] | None = None, settings: Settings | None = None,
              files: bool = True) -> Any:
    """A DuckDB connection where each dataset's name is a view over its committed files.

    files=False: the SQL run on it cannot read or write any other file or URL (DuckDB's
    external access is switched off once the views exist; only the lakes' own folders stay
    readable). Use it for SQL that comes from someone who may not read the machine's files."""
    all_ds = load_datasets(settings)
    if not all_ds:
        raise ConfigError("no lake datasets are declared",
                          hint="add [lake.datasets.NAME] to shipyard.toml (see docs/lake.md)")
    names = datasets or list(all_ds)
    con = connect()
    roots = []
    for n in names:
        ds = all_ds.get(n) or get_dataset(n, settings)
        store = open_store(ds.lake_url)
        register_lake(con, n, ds, store, read_manifest(store, n))
        if not is_s3_url(ds.lake_url):
            roots.append(ds.lake_url.rstrip("/") + "/")
    if not files:
        con.execute(f"SET allowed_directories=[{', '.join(lit(r) for r in roots)}]")
        con.execute("SET enable_external_access=false")
    return con


def query(sql: str, *, output: str | None = None, fmt: str | None = None,
          limit: int | None = None, files: bool = True, settings: Settings | None = None) -> QueryResult:
    """Run `sql` over the lake; with `output`, write CSV or Parquet there instead of returning rows.

    Like any DuckDB SQL, `sql` may read local files and URLs (read_csv('/etc/...')) and write
    them (COPY ... TO): fine for the user at a terminal, not for SQL from elsewhere. files=False
    (see open_lake) switches that off; `output` is then refused."""
    if output and not files:
        raise InputError("query(files=False) cannot write an output file",
                         hint="fetch the rows and write them yourself")
    con = open_lake(settings=settings, files=files)
    try:
        if output:
            fmt = fmt or ("parquet" if output.endswith(".parquet") else "csv")
            if fmt not in ("csv", "parquet"):
                raise InputError(f"unknown output format {fmt!r}", hint="use csv or parquet")
            opts = "FORMAT parquet, COMPRESSION snappy" if fmt == "parquet" else "FORMAT csv, HEADER true"
            n = con.execute(f"COPY ({sql}) TO {lit(output)} ({opts})").fetchone()[0]
            return QueryResult([], [], output, int(n))
        cur = con.execute(sql)
        if cur.description is None:
            return QueryResult([], [])
        rows = cur.fetchmany(limit) if limit else cur.fetchall()
        return QueryResult([d[0] for d in cur.description], rows, None, len(rows))
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"query failed: {first}",
                         hint="views: " + ", ".join(load_datasets(settings)) +
                         "; partition columns are text (WHERE dt = '2021-03-01')") from None
    finally:
        con.close()


# --- stats --------------------------------------------------------------------------------

@dataclass
class PartitionStats:
    partition: str
    files: int
    rows: int
    bytes: int


@dataclass
class Stats:
    dataset: str
    version: int
    partitions: list[PartitionStats]
    files: int
    rows: int
    lake_bytes: int
    raw_files: int
    raw_bytes: int
    rejected: dict[str, str]
    columns: dict[str, str]

    @property
    def compression(self) -> float | None:
        return self.raw_bytes / self.lake_bytes if self.lake_bytes else None


def stats(name: str, settings: Settings | None = None) -> Stats:
    ds = get_dataset(name, settings)
    m = read_manifest(open_store(ds.lake_url), name)
    by: dict[str, PartitionStats] = {}
    for f in m.files:
        key = "/".join(f"{k}={'NULL' if v is None else v}" for k, v in f["partition"].items()) or "(none)"
        p = by.setdefault(key, PartitionStats(key, 0, 0, 0))
        p.files += 1
        p.rows += f["rows"]
        p.bytes += f["bytes"]
    return Stats(
        name, m.version, sorted(by.values(), key=lambda p: p.partition), len(m.files), m.rows,
        m.lake_bytes, len(m.ingested), m.raw_bytes,
        {k: v.get("error", "") for k, v in m.rejected.items()},
        {n: sch.show(t) for n, t in lake_columns(ds, m).items()},
    )


# --- compact ------------------------------------------------------------------------------

@dataclass
class CompactResult:
    dataset: str
    partitions: int = 0
    files_before: int = 0
    files_after: int = 0
    rows: int = 0
    orphans_removed: int = 0


def compact(name: str, *, min_files: int = 2, progress: Progress | None = None,
            settings: Settings | None = None) -> CompactResult:
    """Merge each partition's small files into files of about `file_size_mb`.

    Same protocol as ingest: new files first, manifest commit, then the old files are
    deleted (a crash in between leaves orphans the next writer removes; readers through
    the manifest never see both).
    """
    say = progress or (lambda s: None)
    ds = get_dataset(name, settings)
    lake = open_store(ds.lake_url)
    m = read_manifest(lake, name)
    check_compatible(m, ds.config.partition_by, ds.config.id, name)
    res = CompactResult(name)
    res.orphans_removed = len(remove_orphans(lake, m))
    target = ds.config.file_size_mb << 20
    groups: dict[tuple, list[dict]] = {}
    for f in m.files:
        groups.setdefault(tuple(sorted(f["partition"].items())), []).append(f)
    todo = {k: v for k, v in groups.items()
            if len(v) >= min_files and sum(1 for f in v if f["bytes"] < target) >= min_files}
    if not todo:
        say("nothing to compact")
        return res
    parts = partition_names(ds)
    txn = new_txn()
    expected = m.version
    new_entries: list[dict] = []
    old_keys: set[str] = set()
    order = f"ORDER BY {', '.join(q(s) for s in ds.config.sort_by)}" if ds.config.sort_by else ""
    with tempfile.TemporaryDirectory(prefix="shipyard-compact-") as tmp:
        con = connect(spill_dir=str(Path(tmp) / "spill"))
        for n, (pkey, files) in enumerate(sorted(todo.items(), key=lambda kv: partition_dir(kv[1][0]["partition"])), 1):
            rel = "/".join(f"{k}={v}" for k, v in pkey)
            say(f"partition {n}/{len(todo)} {rel}: {len(files)} files")
            register_lake(con, "part", ds, lake, m, files)
            out = Path(tmp) / "out" / f"p{n}"
            out.mkdir(parents=True)
            # Write into the partition's own folder name, as stored (keeps DuckDB's escaping).
            sub = out / files[0]["key"].rsplit("/", 1)[0] if parts else out
            sub.mkdir(parents=True, exist_ok=True)
            exclude = f" EXCLUDE ({', '.join(q(p) for p in parts)})" if parts else ""
            con.execute(f"COPY (SELECT *{exclude} FROM part {order}) TO {lit(str(sub))} "
                        f"({copy_options(ds, txn, True)})")
            entries = publish(lake, out, f"{txn}-{n}")
            for e in entries:
                e["partition"] = dict(files[0]["partition"])
            new_entries += entries
            old_keys |= {f["key"] for f in files}
            res.partitions += 1
            res.files_before += len(files)
            res.files_after += len(entries)
            res.rows += sum(e["rows"] for e in entries)
            if sum(e["rows"] for e in entries) != sum(f["rows"] for f in files):
                raise InputError(f"compacting {rel} changed the row count; nothing was committed")
        con.close()
    m.files = [f for f in m.files if f["key"] not in old_keys] + new_entries
    m.history.append({"txn": txn, "at": now_iso(), "op": "compact", "partitions": res.partitions,
                      "files_before": res.files_before, "files_after": res.files_after})
    commit(lake, m, expected_version=expected)
    after_commit(ds, lake, m, {partition_dir(v[0]["partition"]) for v in todo.values()})
    for k in old_keys:
        lake.delete(k)
    notify("info", f"lake compact {name}: {res.files_before} -> {res.files_after} files",
           f"{res.partitions} partition(s) compacted, {res.rows} rows",
           {"dataset": name, "partitions": res.partitions, "files_before": res.files_before,
            "files_after": res.files_after, "version": m.version}, settings)
    return res


# --- ddl ----------------------------------------------------------------------------------

def ddl(name: str, *, dialect: str = "athena", table: str | None = None,
        database: str | None = None, catalog: str = "hive", settings: Settings | None = None) -> str:
    """DDL for an external table over the lake, for Athena (Hive DDL) or Trino (Hive connector).

    Partition columns are text (their folder names). New partitions must be registered:
    `MSCK REPAIR TABLE` on Athena, `system.sync_partition_metadata` on Trino.
    """
    if dialect not in ("athena", "trino"):
        raise InputError(f"unknown DDL dialect {dialect!r}", hint="use athena or trino")
    ds = get_dataset(name, settings)
    m = read_manifest(open_store(ds.lake_url), name)
    cols = lake_columns(ds, m)
    if not cols:
        raise InputError(f"lake {name!r} has no schema yet",
                         hint=f"run `shipyard lake ingest {name}` first")
    location = (ds.lake_url if ds.lake_url.startswith("s3://") else "file://" + ds.lake_url).rstrip("/") + "/"
    parts = partition_names(ds)
    tname = table or name
    if dialect == "trino":
        schema_name = database or "default"
        full = f'{catalog}."{schema_name}"."{tname}"'
        body = ",\n".join([f'  "{n}" {sch.to_trino(t)}' for n, t in cols.items()]
                          + [f'  "{p}" varchar' for p in parts])
        with_ = [f"format = 'PARQUET'", f"external_location = '{location}'"]
        if parts:
            with_.append("partitioned_by = ARRAY[" + ", ".join(f"'{p}'" for p in parts) + "]")
        out = f"CREATE TABLE IF NOT EXISTS {full} (\n{body}\n)\nWITH (\n  " + ",\n  ".join(with_) + "\n);\n"
        if parts:
            out += (f"-- then load the partitions: CALL {catalog}.system.sync_partition_metadata"
                    f"('{schema_name}', '{tname}', 'ADD');\n")
        return out
    tfull = ".".join(hive_ident(x) for x in ([database] if database else []) + [tname])
    body = ",\n".join(f"  {hive_ident(n)} {sch.to_hive(t)}" for n, t in cols.items())
    out = f"CREATE EXTERNAL TABLE IF NOT EXISTS {tfull} (\n{body}\n)\n"
    if parts:
        out += "PARTITIONED BY (" + ", ".join(f"{hive_ident(p)} string" for p in parts) + ")\n"
    out += (f"STORED AS PARQUET\nLOCATION '{location}'\n"
            "TBLPROPERTIES ('parquet.compression'='SNAPPY');\n")
    if parts:
        out += f"-- then load the partitions: MSCK REPAIR TABLE {tfull};\n"
    return out
