"""`forget`: erase events (a user's deletion request) by rewriting only the files that hold them.

Same protocol as compact: the affected files are rewritten without the matching rows (or
dropped when nothing is left), the manifest commit swaps them atomically, then the old files
are deleted. The command proves the erasure by running the predicate again on the committed
lake (it must count 0 rows), and writes a log `_shipyard/erasures/<txn>.json` with the erased
ids, the partitions and the time: never the erased rows themselves.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import duckdb

from shipyard.errors import InputError, ShipyardError
from shipyard.lake.config import get_dataset
from shipyard.lake.engines.duck import copy_options
from shipyard.lake.manifest import check_compatible, commit, new_txn, read_manifest, remove_orphans
from shipyard.lake.notices import notify
from shipyard.lake.publish import after_commit, publish
from shipyard.lake.read import connect, partition_dir, partition_names, register_lake
from shipyard.lake.sql import lit, q
from shipyard.settings import Settings
from shipyard.store import open_store

ERASURE_LOG = "_shipyard/erasures/"


@dataclass
class ForgetResult:
    dataset: str
    txn: str = ""
    rows_erased: int = 0
    files_rewritten: int = 0
    files_dropped: int = 0
    partitions: list[str] = field(default_factory=list)
    ids: list[Any] = field(default_factory=list)
    remaining: int = 0  # matching rows found after the commit: always 0, or an error was raised
    log_key: str | None = None


def _predicate(con: Any, ds_id: list[str], where: str | None, ids_file: str | None) -> str:
    if bool(where) == bool(ids_file):
        raise InputError("give exactly one of --where and --ids-file",
                         hint="--where \"user_uuid = '...'\" or --ids-file ids.txt (one id per line)")
    if where:
        # One condition, never a second statement smuggled after a ';'.
        if len(con.extract_statements(f"SELECT 1 WHERE ({where})")) != 1:
            raise InputError(f"--where {where!r} is not one condition", hint="a DuckDB condition, no ';'")
        return f"({where})"
    if len(ds_id) != 1:
        raise InputError(f"--ids-file needs a one-column id; this dataset's id is {ds_id}",
                         hint="use --where with every id column")
    path = Path(ids_file).expanduser()  # type: ignore[arg-type]
    if not path.is_file():
        raise InputError(f"--ids-file {ids_file}: not a file")
    with open(path, encoding="utf-8") as f:
        ids = sorted({line.strip() for line in f if line.strip()})
    if not ids:
        raise InputError(f"--ids-file {ids_file} holds no id")
    con.execute("CREATE OR REPLACE TEMP TABLE forget_ids (id VARCHAR)")
    con.executemany("INSERT INTO forget_ids VALUES (?)", [(i,) for i in ids])
    return f"(CAST({q(ds_id[0])} AS VARCHAR) IN (SELECT id FROM forget_ids))"


def forget(name: str, *, where: str | None = None, ids_file: str | None = None,
           progress: Callable[[str], None] | None = None, settings: Settings | None = None) -> ForgetResult:
    say = progress or (lambda s: None)
    ds = get_dataset(name, settings)
    lake = open_store(ds.lake_url)
    m = read_manifest(lake, name)
    check_compatible(m, ds.config.partition_by, ds.config.id, name)
    res = ForgetResult(name, new_txn())
    parts = partition_names(ds)
    with tempfile.TemporaryDirectory(prefix="shipyard-forget-") as tmp:
        con = connect(spill_dir=str(Path(tmp) / "spill"))
        pred = _predicate(con, ds.config.id, where, ids_file)
        remove_orphans(lake, m)
        keep = f"WHERE {pred} IS NOT TRUE"  # a NULL predicate keeps the row
        old, new = [], []
        for n, f in enumerate(m.files):
            register_lake(con, "f", ds, lake, m, [f])
            try:
                hits = con.execute(f"SELECT {', '.join(q(i) for i in ds.config.id)} FROM f WHERE {pred}").fetchall()
            except duckdb.Error as exc:
                raise InputError(f"--where {where!r}: {str(exc).splitlines()[0]}",
                                 hint="a DuckDB condition on the lake's columns, e.g. user_id = '...'") from None
            if not hits:
                continue
            say(f"{f['key']}: {len(hits)} row(s) to erase")
            res.rows_erased += len(hits)
            res.ids += [h[0] if len(h) == 1 else list(h) for h in hits]
            folder = partition_dir(f["partition"])
            if folder not in res.partitions:
                res.partitions.append(folder)
            old.append(f)
            if len(hits) == f["rows"]:
                res.files_dropped += 1
                continue
            out = Path(tmp) / "out" / f"f{n}"
            sub = out / folder if folder else out
            sub.mkdir(parents=True)
            exclude = f" EXCLUDE ({', '.join(q(p) for p in parts)})" if parts else ""
            order = f"ORDER BY {', '.join(q(s) for s in ds.config.sort_by)}" if ds.config.sort_by else ""
            con.execute(f"COPY (SELECT *{exclude} FROM f {keep} {order}) TO {lit(str(sub / 'part-0.parquet'))} "
                        f"({copy_options(ds, res.txn, False)})")
            entries = publish(lake, out, f"{res.txn}-{n}")
            for e in entries:
                e["partition"] = dict(f["partition"])
            new += entries
            res.files_rewritten += 1
        con.close()
    if not old:
        say("no row matches: nothing to erase")
        return res
    expected = m.version
    gone = {f["key"] for f in old}
    m.files = [f for f in m.files if f["key"] not in gone] + new
    at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    m.history.append({"txn": res.txn, "at": at, "op": "forget", "rows": res.rows_erased,
                      "partitions": res.partitions})
    commit(lake, m, expected_version=expected)
    after_commit(ds, lake, m, res.partitions)
    for k in gone:
        lake.delete(k)
    # The proof, on the committed lake as every reader sees it.
    con = connect()
    register_lake(con, "proof", ds, lake, read_manifest(lake, name))
    if ids_file:
        _predicate(con, ds.config.id, None, ids_file)
    res.remaining = con.execute(f"SELECT count(*) FROM proof WHERE {pred}").fetchone()[0]
    con.close()
    if res.remaining:
        raise ShipyardError(f"forget {name}: {res.remaining} matching row(s) are still in the lake",
                            hint="run forget again; report this as a bug")
    res.log_key = f"{ERASURE_LOG}{res.txn}.json"
    lake.put(res.log_key, json.dumps({
        "dataset": name, "txn": res.txn, "at": at, "version": m.version, "id_columns": ds.config.id,
        "ids": res.ids, "partitions": res.partitions, "rows": res.rows_erased,
        "files_rewritten": res.files_rewritten, "files_dropped": res.files_dropped}, indent=1).encode())
    notify("info", f"lake forget {name}: {res.rows_erased} row(s) erased",
           f"{len(res.partitions)} partition(s) rewritten; proof query found 0 rows; log {res.log_key}",
           {"dataset": name, "rows": res.rows_erased, "partitions": res.partitions, "log": res.log_key}, settings)
    return res
