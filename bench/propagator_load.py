"""Benchmark: the propagator against the fastest known path for each engine, in one run.

    .venv/bin/python bench/propagator_load.py                 # 1,000,000 rows
    .venv/bin/python bench/propagator_load.py --rows 200000 --memory-rows 1000000,4000000
    .venv/bin/python bench/propagator_load.py --mysql --s3    # + MariaDB and the S3 store

Rows are the example schema (examples/propagator: orders with a primary key and a sort-key
index). Each pair runs on the same machine in the same run, best of --repeat:

  PostgreSQL  raw psycopg COPY into a bare table with the same indexes   vs  the propagator's load
              raw COPY to a temp table + INSERT ... ON CONFLICT          vs  the propagator's upsert
  DuckDB      INSERT ... SELECT FROM read_csv (the same table DDL)      vs  the propagator into DuckDB
  MariaDB     raw LOAD DATA LOCAL INFILE into a bare table              vs  the propagator's load  (--mysql)
  S3 (moto)   raw COPY of the object streamed from S3                   vs  the propagator from s3://  (--s3)

Targets: load >= 0.85 x raw COPY, upsert >= 0.8 x raw upsert, DuckDB >= 0.85 x read_csv (the same
targets for MariaDB and S3); peak memory flat in file size (--memory-rows: the propagator's
PostgreSQL load in a child process, peak RSS per file size).
Needs PostgreSQL on 127.0.0.1:5432 (and MariaDB on :3306 for --mysql). Not a test: it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import duckdb
import psycopg
from psycopg.conninfo import make_conninfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

import shipyard.propagator.engines.duckdb  # noqa: E402,F401  (loaded up front: the run times loads, not imports)
import shipyard.propagator.engines.mysql  # noqa: E402,F401
import shipyard.propagator.engines.postgres  # noqa: E402,F401
import shipyard.propagator.runner  # noqa: E402,F401

PG_URL = os.environ.get("SHIPYARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_URL = os.environ.get("SHIPYARD_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
SPEC = {
    "column_specification": {"id": "INTEGER", "customer": "VARCHAR(100)", "amount": "DECIMAL(12,2)",
                             "status": "VARCHAR(20)", "ordered_at": "TIMESTAMP"},
    "primary_key": ["id"], "dist_key": "customer", "sort_key": ["ordered_at"],
}
PG_DDL = ('CREATE TABLE {t} (id INTEGER NOT NULL PRIMARY KEY, customer VARCHAR(100), amount DECIMAL(12,2), '
          'status VARCHAR(20), ordered_at TIMESTAMP); CREATE INDEX ON {t} (ordered_at)')
CHUNK = 1 << 20


def make_files(folder: Path, rows: int) -> tuple[Path, Path]:
    """load.csv (rows rows) and upsert.csv (half updates of existing ids, half new ids)."""
    load, upsert = folder / "load.csv", folder / "upsert.csv"
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT range::INTEGER AS id, 'customer_' || (range % 5000) AS customer,
                   round((range % 100000) / 7.0, 2)::DECIMAL(12,2) AS amount,
                   CASE range % 3 WHEN 0 THEN 'placed' WHEN 1 THEN 'shipped' ELSE 'delivered' END AS status,
                   TIMESTAMP '2026-01-01' + INTERVAL (range) SECOND AS ordered_at
                   FROM range({rows})) TO '{load}' (FORMAT csv, HEADER true)""")
    con.execute(f"""COPY (SELECT (range + {rows // 2})::INTEGER AS id, round(range / 3.0, 2)::DECIMAL(12,2) AS amount,
                   'returned' AS status FROM range({rows})) TO '{upsert}' (FORMAT csv, HEADER true)""")
    con.close()
    return load, upsert


def best(fn: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if setup:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def duel(raw: Callable[[], Any], raw_setup: Callable[[], Any], prop: Callable[[], Any], prop_setup: Callable[[], Any],
         repeat: int) -> tuple[float, float]:
    """Best of `repeat` for each path, the two alternating so a busy moment hits both alike."""
    t_raw, t_prop = [], []
    for _ in range(repeat):
        t_raw.append(best(raw, 1, raw_setup))
        t_prop.append(best(prop, 1, prop_setup))
    return min(t_raw), min(t_prop)


class PgDb:
    def __init__(self) -> None:
        self.name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_URL, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{self.name}"')
        self.url = make_conninfo(PG_URL, dbname=self.name)

    def execute(self, sql: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as c:
            c.execute(sql)

    def drop(self) -> None:
        with psycopg.connect(PG_URL, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def raw_pg_copy(url: str, table: str, path: Path, stream: Callable[[], Any] | None = None) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY {table} (id, customer, amount, status, ordered_at) FROM STDIN WITH (FORMAT csv, HEADER true)") as cp:
            with (stream() if stream else open(path, "rb")) as f:
                while chunk := f.read(CHUNK):
                    cp.write(chunk)


def raw_pg_upsert(url: str, table: str, path: Path) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE stage ON COMMIT DROP AS SELECT id, amount, status FROM {table} WITH NO DATA")
        with cur.copy("COPY stage (id, amount, status) FROM STDIN WITH (FORMAT csv, HEADER true)") as cp:
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    cp.write(chunk)
        cur.execute(f"INSERT INTO {table} (id, amount, status) SELECT id, amount, status FROM stage "
                    "ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount, status = EXCLUDED.status")


class Bucket:
    """A local bucket folder (or an S3 bucket) and a propagator over it."""

    def __init__(self, url: str, destinations: dict[str, dict[str, str]]) -> None:
        from shipyard.notify import MemoryNotifier
        from shipyard.propagator import Propagator
        from shipyard.settings import Settings
        from shipyard.store import open_store

        self.store = open_store(url)
        self.settings = Settings(destinations=destinations, propagator={"workers": 1})
        self.p = Propagator.from_settings(url, self.settings, notifier=MemoryNotifier())

    def key(self, dest: str, db: str, table: str, folder: str, name: str) -> str:
        return f"destination={dest}/database={db}/table_name={table}/{folder}/{name}"

    def create(self, dest: str, db: str, table: str) -> None:
        k = self.key(dest, db, table, "schema/create", "t.json")
        self.store.put(k, json.dumps(SPEC).encode())
        o = self.p.process_key(k)
        assert o.status == "succeeded", o

    def put_file(self, dest: str, db: str, table: str, folder: str, path: Path, name: str) -> str:
        k = self.key(dest, db, table, folder, name)
        with open(path, "rb") as f:
            self.store.put(k, f)
        return k

    def process(self, key: str, rows: int) -> None:
        o = self.p.process_key(key)
        assert o.status == "succeeded" and o.rows == rows, o


def bench_postgres(files: tuple[Path, Path], rows: int, repeat: int, work: Path) -> list[tuple]:
    load, upsert = files
    out = []
    db = PgDb()
    try:
        b = Bucket(str(work / "bucket"), {"postgres": {"url": PG_URL}})
        n = [0]

        def raw_setup():
            n[0] += 1
            db.execute(PG_DDL.format(t=f"raw{n[0]}"))

        m = [0]
        keys: list[str] = []

        def prop_setup():
            m[0] += 1
            b.create("postgres", db.name, f"prop{m[0]}")
            keys.append(b.put_file("postgres", db.name, f"prop{m[0]}", "input/load", load, "load.csv"))

        t_raw, t_prop = duel(lambda: raw_pg_copy(db.url, f"raw{n[0]}", load), raw_setup,
                             lambda: b.process(keys[-1], rows), prop_setup, repeat)
        out.append(("PostgreSQL load", rows, t_raw, t_prop, 0.85, "raw COPY into a bare table, same indexes"))

        # Upserts run against the tables loaded above; each repeat gets a fresh copy of one.
        u = [0]

        def raw_up_setup():
            u[0] += 1
            db.execute(PG_DDL.format(t=f"rawup{u[0]}") + f"; INSERT INTO rawup{u[0]} SELECT * FROM raw1")

        w = [0]
        ukeys: list[str] = []

        def prop_up_setup():
            w[0] += 1
            t = f"propup{w[0]}"
            b.create("postgres", db.name, t)
            db.execute(f"INSERT INTO {t} SELECT * FROM prop1")
            ukeys.append(b.put_file("postgres", db.name, t, "input/update", upsert, "upsert.csv"))

        t_raw_up, t_prop_up = duel(lambda: raw_pg_upsert(db.url, f"rawup{u[0]}", upsert), raw_up_setup,
                                   lambda: b.process(ukeys[-1], rows), prop_up_setup, repeat)
        out.append(("PostgreSQL upsert", rows, t_raw_up, t_prop_up, 0.80, "raw COPY to temp + INSERT ON CONFLICT"))
        b.p.close()
    finally:
        db.drop()
    return out


def bench_duckdb(files: tuple[Path, Path], rows: int, repeat: int, work: Path) -> list[tuple]:
    load, _ = files
    n = [0]
    ddl = ("CREATE TABLE t (id INTEGER NOT NULL PRIMARY KEY, customer VARCHAR(100), amount DECIMAL(12,2), "
           "status VARCHAR(20), ordered_at TIMESTAMP); CREATE INDEX t_sort ON t (ordered_at)")

    def raw_setup():
        n[0] += 1
        con = duckdb.connect(str(work / f"raw{n[0]}.duckdb"))
        con.execute(ddl)
        con.close()

    def raw():
        con = duckdb.connect(str(work / f"raw{n[0]}.duckdb"))
        con.execute(f"INSERT INTO t SELECT * FROM read_csv('{load}', header = true)")
        con.close()

    m = [0]
    state: dict[str, Any] = {}

    def prop_setup():
        m[0] += 1
        if "b" in state:
            state["b"].p.close()
        b = Bucket(str(work / f"dbucket{m[0]}"), {"duckdb": {"url": str(work / f"prop{m[0]}.duckdb")}})
        b.create("duckdb", "bench", "orders")
        state["b"] = b
        state["k"] = b.put_file("duckdb", "bench", "orders", "input/load", load, "load.csv")

    t_raw, t_prop = duel(raw, raw_setup, lambda: state["b"].process(state["k"], rows), prop_setup, repeat)
    state["b"].p.close()
    return [("DuckDB load", rows, t_raw, t_prop, 0.85, "INSERT ... SELECT FROM read_csv, same DDL")]


def bench_mysql(files: tuple[Path, Path], rows: int, repeat: int, work: Path) -> list[tuple]:
    import pymysql

    load, _ = files
    db = f"bench_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True, local_infile=True)
    admin.cursor().execute(f"CREATE DATABASE `{db}`")
    ddl = ("CREATE TABLE {t} (id INTEGER NOT NULL PRIMARY KEY, customer VARCHAR(100), amount DECIMAL(12,2), "
           "status VARCHAR(20), ordered_at DATETIME, INDEX (ordered_at))")
    try:
        n = [0]

        def raw_setup():
            n[0] += 1
            admin.cursor().execute(f"USE `{db}`")
            admin.cursor().execute(ddl.format(t=f"raw{n[0]}"))

        def raw():
            c = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=db, local_infile=True)
            with c.cursor() as cur:
                cur.execute(f"LOAD DATA LOCAL INFILE '{load}' INTO TABLE raw{n[0]} FIELDS TERMINATED BY ',' "
                            "OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n' IGNORE 1 LINES "
                            "(id, customer, amount, status, ordered_at)")
            c.commit()
            c.close()

        b = Bucket(str(work / "mbucket"), {"mysql": {"url": MYSQL_URL}})
        m = [0]
        keys: list[str] = []

        def prop_setup():
            m[0] += 1
            b.create("mysql", db, f"prop{m[0]}")
            keys.append(b.put_file("mysql", db, f"prop{m[0]}", "input/load", load, "load.csv"))

        t_raw, t_prop = duel(raw, raw_setup, lambda: b.process(keys[-1], rows), prop_setup, repeat)
        b.p.close()
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()
    return [("MariaDB load", rows, t_raw, t_prop, 0.85, "raw LOAD DATA LOCAL INFILE, same indexes")]


def bench_s3(files: tuple[Path, Path], rows: int, repeat: int, work: Path) -> list[tuple]:
    """The store, not the engine: raw COPY streamed from the S3 object vs the propagator from s3://."""
    import boto3
    from moto.server import ThreadedMotoServer

    load, _ = files
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    db = PgDb()
    try:
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="bench")
        b = Bucket("s3://bench", {"postgres": {"url": PG_URL}})
        raw_key = "raw/load.csv"
        s3.upload_file(str(load), "bench", raw_key)
        n = [0]

        def raw_setup():
            n[0] += 1
            db.execute(PG_DDL.format(t=f"raw{n[0]}"))

        m = [0]
        keys: list[str] = []

        def prop_setup():
            m[0] += 1
            b.create("postgres", db.name, f"prop{m[0]}")
            keys.append(b.put_file("postgres", db.name, f"prop{m[0]}", "input/load", load, "load.csv"))

        # What the contract adds on S3: moving the object to succeeded/ is a copy + delete (S3 has
        # no rename), which moto performs by copying the bytes in Python (real S3 copies server-side
        # without the bytes passing the client). Timed inside each run, so the load can be measured
        # without it in the same run.
        store = b.p.endings.store
        move, moves = store.move, []

        def timed_move(src: str, dst: str) -> None:
            t0 = time.perf_counter()
            move(src, dst)
            moves.append(time.perf_counter() - t0)

        store.move = timed_move  # type: ignore[method-assign]
        runs: list[float] = []

        def prop_run() -> None:
            t0 = time.perf_counter()
            b.process(keys[-1], rows)
            runs.append(time.perf_counter() - t0 - moves[-1])

        t_raw, t_prop = duel(lambda: raw_pg_copy(db.url, f"raw{n[0]}", load,
                                                 stream=lambda: s3.get_object(Bucket="bench", Key=raw_key)["Body"]),
                             raw_setup, prop_run, prop_setup, repeat)
        b.p.close()
    finally:
        db.drop()
        server.stop()
    return [("S3 -> PostgreSQL load", rows, t_raw, t_prop, 0.85,
             f"raw COPY streamed from the S3 object (the propagator's time includes {min(moves):.2f}-"
             f"{max(moves):.2f}s to move the object to succeeded/: moto copies it in Python)"),
            ("S3 -> PostgreSQL, load alone", rows, t_raw, min(runs), 0.85,
             "the same runs without the archive move (copy + delete), timed inside each run")]


def child_load(path: str) -> None:
    """In a child process: one propagator load of the file into PostgreSQL; print the peak RSS
    sampled during the load (every 5 ms) against the RSS just before it."""
    import threading

    import psutil

    load = Path(path)
    rows = sum(1 for _ in open(load, "rb")) - 1
    proc = psutil.Process()
    db = PgDb()
    try:
        b = Bucket(str(load.parent / f"mem-bucket-{rows}"), {"postgres": {"url": PG_URL}})
        b.create("postgres", db.name, "orders")  # imports and connections done: the baseline
        k = b.put_file("postgres", db.name, "orders", "input/load", load, "load.csv")
        before = proc.memory_info().rss
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], proc.memory_info().rss)
                done.wait(0.005)

        t = threading.Thread(target=sample)
        t.start()
        try:
            b.process(k, rows)
        finally:
            done.set()
            t.join()
        b.p.close()
    finally:
        db.drop()
    print(json.dumps({"rows": rows, "bytes": load.stat().st_size, "rss_before_kib": before // 1024,
                      "peak_kib": peak[0] // 1024}))


def memory(rows_list: list[int]) -> list[dict[str, Any]]:
    out = []
    for rows in rows_list:
        work = Path(tempfile.mkdtemp(prefix="bench-mem-"))
        try:
            load, _ = make_files(work, rows)
            r = subprocess.run([sys.executable, __file__, "--child-load", str(load)], capture_output=True, text=True,
                               check=True)
            out.append(json.loads(r.stdout.strip().splitlines()[-1]))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs per path, alternating (default 3)")
    ap.add_argument("--mysql", action="store_true", help="also MariaDB (raw LOAD DATA vs the propagator)")
    ap.add_argument("--s3", action="store_true", help="also the S3 store (moto's server on 127.0.0.1)")
    ap.add_argument("--memory-rows", default="", help="comma-separated sizes for the peak-memory check, "
                    "e.g. 1000000,4000000 (each in a child process)")
    ap.add_argument("--only", choices=["postgres", "duckdb", "mysql", "s3"], action="append",
                    help="run only these paths (repeatable)")
    ap.add_argument("--child-load", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_load:
        child_load(args.child_load)
        return
    import logging

    logging.disable(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench-propagator-"))
    try:
        t0 = time.perf_counter()
        files = make_files(work, args.rows)
        print(f"{args.rows:,} rows, {files[0].stat().st_size / 1e6:.1f} MB CSV (made in {time.perf_counter() - t0:.1f}s); "
              f"best of {args.repeat}; {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}")
        print(f"\n{'path':<24}{'raw rows/s':>14}{'propagator rows/s':>20}{'ratio':>8}{'target':>8}  result   baseline",
              flush=True)
        benches = [bench_postgres, bench_duckdb] + ([bench_mysql] if args.mysql else []) + ([bench_s3] if args.s3 else [])
        if args.only:
            chosen = {"postgres": bench_postgres, "duckdb": bench_duckdb, "mysql": bench_mysql, "s3": bench_s3}
            benches = [chosen[name] for name in args.only]
        for bench in benches:
            for name, rows, t_raw, t_prop, target, base in bench(files, args.rows, args.repeat, work):
                ratio = t_raw / t_prop
                print(f"{name:<24}{rows / t_raw:>14,.0f}{rows / t_prop:>20,.0f}{ratio:>8.2f}{target:>8.2f}  "
                      f"{'ok  ' if ratio >= target else 'MISS'}     {base}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.memory_rows:
        print("\npeak RSS of a propagator load into PostgreSQL (child process):")
        for m in memory([int(x) for x in args.memory_rows.split(",") if x]):
            print(f"  {m['rows']:>10,} rows  {m['bytes'] / 1e6:>8.1f} MB file  peak RSS {m['peak_kib'] / 1024:>7.1f} MiB "
                  f"(before the load {m['rss_before_kib'] / 1024:.1f} MiB: +{(m['peak_kib'] - m['rss_before_kib']) / 1024:.1f})")


if __name__ == "__main__":
    main()
