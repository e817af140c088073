"""Propagator fixtures: a destination (parametrized over the engines that run here) and a bucket.

`dest` sets the environment the way an operator would (SHIPYARD_DESTINATIONS__...), so the
code under test reads its settings exactly as in production.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipyard.notify import MemoryNotifier
from shipyard.propagator import Propagator
from shipyard.settings import get_settings
from shipyard.store import open_store

ORDERS_SPEC = {
    "column_specification": {"id": "INTEGER", "name": "VARCHAR(50)", "amount": "INTEGER", "city": "VARCHAR(30)"},
    "primary_key": ["id"],
    "dist_key": "id",
    "sort_key": ["amount"],
}


@dataclass
class Dest:
    name: str  # the key's destination=<name>
    kind: str  # engine: duckdb | postgres | mysql
    db: str  # the key's database=<db>
    url: str | None = None

    def key(self, table: str, folder: str, file: str) -> str:
        return f"destination={self.name}/database={self.db}/table_name={table}/{folder}/{file}"

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Read back through the engine's own driver (no propagator code involved)."""
        if self.kind == "duckdb":
            import duckdb

            con = duckdb.connect(str(Path("warehouse.duckdb").resolve()))
            try:
                if con.execute("SELECT 1 FROM duckdb_schemas() WHERE schema_name = ?", [self.db]).fetchone():
                    con.execute(f"SET schema = '{self.db}'")
                return con.execute(sql).fetchall()
            finally:
                con.close()
        if self.kind == "postgres":
            import psycopg
            from psycopg.conninfo import make_conninfo

            with psycopg.connect(make_conninfo(self.url, dbname=self.db)) as c:
                return c.execute(sql).fetchall()
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=self.db)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())
        finally:
            conn.close()

    def rows(self, table: str, cols: str = "*", order: str = "id") -> list[tuple[Any, ...]]:
        return [tuple(_plain(v) for v in r) for r in self.query(f"SELECT {cols} FROM {table} ORDER BY {order}")]

    def columns(self, table: str) -> list[str]:
        if self.kind == "mysql":
            sql = (f"SELECT column_name FROM information_schema.columns WHERE table_schema = '{self.db}' "
                   f"AND table_name = '{table}' ORDER BY ordinal_position")
        else:
            schema = self.db if self.kind == "duckdb" else "public"
            sql = (f"SELECT column_name FROM information_schema.columns WHERE table_schema = '{schema}' "
                   f"AND table_name = '{table}' ORDER BY ordinal_position")
        return [r[0] for r in self.query(sql)]

    def table_exists(self, table: str) -> bool:
        return bool(self.columns(table))


def _plain(v: Any) -> Any:
    from decimal import Decimal

    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return v


@pytest.fixture(autouse=True)
def _no_settle_time(monkeypatch):
    """Files here are written whole (LocalStore.put renames into place): no settle wait. The
    settle rule has its own tests (test_half_written.py)."""
    monkeypatch.setenv("SHIPYARD_PROPAGATOR__SETTLE_SECONDS", "0")


@pytest.fixture(params=["duckdb", "postgres", "mysql"])
def dest(request, monkeypatch) -> Dest:
    """Every destination that runs here: DuckDB (no configuration), PostgreSQL and MariaDB (a
    fresh database each). Redshift is covered by golden SQL + its plans on PostgreSQL (test_plan)."""
    return make_dest(request, monkeypatch, request.param)


def make_dest(request, monkeypatch, kind: str) -> Dest:
    if kind == "duckdb":
        d = Dest("duckdb", "duckdb", "sales")
    elif kind == "postgres":
        admin = request.getfixturevalue("pg_admin_url")
        db = request.getfixturevalue("pg_database")
        monkeypatch.setenv("SHIPYARD_DESTINATIONS__POSTGRES__URL", admin)
        d = Dest("postgres", "postgres", db, admin)
    elif kind == "mysql":
        url = request.getfixturevalue("mysql_url")
        db = request.getfixturevalue("mysql_database")
        monkeypatch.setenv("SHIPYARD_DESTINATIONS__MYSQL__URL", url)
        d = Dest("mysql", "mysql", db, url)
    else:
        raise AssertionError(kind)
    get_settings(fresh=True)
    return d


@pytest.fixture
def bucket(tmp_path) -> str:
    return str(tmp_path / "bucket")


class Harness:
    """A bucket + a propagator with a MemoryNotifier (the outbox is checked separately)."""

    def __init__(self, bucket_url: str, dest: Dest) -> None:
        self.store = open_store(bucket_url)
        self.dest = dest
        self.notes = MemoryNotifier()
        self.p = Propagator.from_settings(bucket_url, get_settings(fresh=True), notifier=self.notes)

    def put(self, table: str, folder: str, file: str, data: bytes | str | dict) -> str:
        if isinstance(data, dict):
            data = json.dumps(data)
        if isinstance(data, str):
            data = data.encode()
        key = self.dest.key(table, folder, file)
        self.store.put(key, data)
        return key

    def create(self, table: str = "orders", spec: dict | None = None) -> None:
        k = self.put(table, "schema/create", f"{table}.json", spec or ORDERS_SPEC)
        o = self.p.process_key(k)
        assert o.status == "succeeded", o

    def run(self, table: str, folder: str, file: str, data: bytes | str | dict):
        return self.p.process_key(self.put(table, folder, file, data))

    def report(self, outcome) -> dict:
        with self.store.open(outcome.moved_to + ".error.json") as f:
            return json.loads(f.read())

    def close(self) -> None:
        self.p.close()


@pytest.fixture
def h(bucket, dest):
    harness = Harness(bucket, dest)
    yield harness
    harness.close()


@pytest.fixture
def h_offline(bucket, monkeypatch):
    """A harness whose destination cannot be reached (nothing listens on its port). For checks
    that must fail before any engine is touched (identifiers, types, spec syntax): they run once,
    not once per engine, and an engine contact would show as a retryable error instead."""
    from tests.helpers import free_port

    monkeypatch.setenv("SHIPYARD_DESTINATIONS__POSTGRES__URL", f"postgresql://u@127.0.0.1:{free_port()}/x")
    get_settings(fresh=True)
    harness = Harness(bucket, Dest("postgres", "postgres", "sales"))
    yield harness
    harness.close()
