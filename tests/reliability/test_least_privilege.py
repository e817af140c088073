"""The least-privilege roles of docs/security.md, applied verbatim, are enough for every
operation (create with a sort-key index, add, drop, load, upsert, the ledger) and no more:
the same role cannot touch a table it does not own (the file fails cleanly, with a report).

The GRANT statements below are the ones docs/security.md prints; a test keeps them honest.
"""

from __future__ import annotations

import json
import uuid

import psycopg
import pymysql
import pytest

from shipyard.notify import MemoryNotifier
from shipyard.propagator import Propagator
from shipyard.settings import get_settings
from shipyard.store import open_store

pytestmark = pytest.mark.timeout(120)

# docs/security.md, PostgreSQL (run as an admin; <db> and the role name substituted)
PG_GRANTS = """
CREATE ROLE {role} LOGIN;
REVOKE ALL ON DATABASE {db} FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role};
"""
PG_SCHEMA_GRANTS = """
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO {role};
"""
# docs/security.md, MySQL / MariaDB
MYSQL_GRANTS = """
CREATE USER '{role}'@'%' IDENTIFIED BY '{password}';
GRANT SELECT, INSERT, UPDATE, CREATE, ALTER, INDEX, CREATE TEMPORARY TABLES ON `{db}`.* TO '{role}'@'%';
"""

SPEC = {"column_specification": {"id": "INTEGER", "name": "VARCHAR(20)", "ts": "TIMESTAMP"}, "primary_key": ["id"],
        "sort_key": ["ts"], "dist_key": "id"}


def _exercise(dest_name: str, db: str, bucket: str) -> dict[str, str]:
    store = open_store(bucket)
    prefix = f"destination={dest_name}/database={db}/table_name=t/"
    files = [
        ("schema/create/1.json", json.dumps(SPEC)),
        ("schema/update/2.json", json.dumps({"column_specification": {"city": "VARCHAR(20)"}, "operation_type": "add"})),
        ("schema/update/3.json", json.dumps({"column_specification": ["ts"], "operation_type": "drop"})),
        ("input/load/4.csv", "id,name,city\n1,a,x\n2,b,y\n"),
        ("input/update/5.csv", "id,name\n2,B\n3,c\n"),
    ]
    for path, body in files:
        store.put(prefix + path, body.encode())
    store.put(f"destination={dest_name}/database={db}/table_name=owned_by_admin/input/load/x.csv", b"id\n1\n")
    with Propagator.from_settings(bucket, get_settings(fresh=True), notifier=MemoryNotifier()) as p:
        return {o.key.split("table_name=")[1]: (o.status, (o.error or {}).get("what")) for o in p.process_pending()}


def test_postgres_least_privilege_role(pg_admin_url, pg_database, tmp_path, monkeypatch):
    role = f"shipyard_loader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as c:
        for stmt in filter(str.strip, PG_GRANTS.format(role=role, db=pg_database).split(";")):
            c.execute(stmt)
    with psycopg.connect(pg_admin_url.rsplit("/", 1)[0] + "/" + pg_database, autocommit=True) as c:
        for stmt in filter(str.strip, PG_SCHEMA_GRANTS.format(role=role).split(";")):
            c.execute(stmt)
        c.execute("CREATE TABLE owned_by_admin (id INTEGER)")
    try:
        monkeypatch.setenv("SHIPYARD_DESTINATIONS__POSTGRES__URL", f"postgresql://{role}@127.0.0.1:5432/postgres")
        out = _exercise("postgres", pg_database, str(tmp_path / "bucket"))
        _check(out)
        with psycopg.connect(pg_admin_url.rsplit("/", 1)[0] + "/" + pg_database) as c:
            assert c.execute("SELECT id, name, city FROM t ORDER BY id").fetchall() == [(1, "a", "x"), (2, "B", "y"),
                                                                                       (3, "c", None)]
            assert c.execute("SELECT tableowner FROM pg_tables WHERE tablename = '_shipyard_ledger'").fetchone() == (role,)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)')
            c.execute(f"DROP ROLE IF EXISTS {role}")


def test_mysql_least_privilege_user(mysql_url, mysql_database, tmp_path, monkeypatch):
    role, password = f"shipyard_l_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        for stmt in filter(str.strip, MYSQL_GRANTS.format(role=role, password=password, db=mysql_database).split(";")):
            admin.cursor().execute(stmt)
        admin.cursor().execute(f"CREATE TABLE `{mysql_database}`.owned_by_admin (id INTEGER)")
        monkeypatch.setenv("SHIPYARD_DESTINATIONS__MYSQL__URL", f"mysql://{role}:{password}@127.0.0.1:3306/test")
        out = _exercise("mysql", mysql_database, str(tmp_path / "bucket"))
        # MySQL has no table owners: the grant is per database, so the admin's table loads too.
        _check(out, other="succeeded")
        loader = pymysql.connect(host="127.0.0.1", port=3306, user=role, password=password, database=mysql_database)
        try:
            for stmt in ("DROP TABLE t", "DELETE FROM t", "TRUNCATE TABLE t", "DROP DATABASE `%s`" % mysql_database):
                with pytest.raises(pymysql.err.OperationalError, match="denied"):
                    loader.cursor().execute(stmt)
        finally:
            loader.close()
        cur = admin.cursor()
        cur.execute(f"SELECT id, name, city FROM `{mysql_database}`.t ORDER BY id")
        assert cur.fetchall() == ((1, "a", "x"), (2, "B", "y"), (3, "c", None))
    finally:
        admin.cursor().execute(f"DROP USER IF EXISTS '{role}'@'%'")
        admin.close()


def _check(out: dict, other: str = "failed") -> None:
    mine = {k: v for k, v in out.items() if k.startswith("t/")}
    assert {k: v[0] for k, v in mine.items()} == {
        "t/schema/create/1.json": "succeeded", "t/schema/update/2.json": "succeeded",
        "t/schema/update/3.json": "succeeded", "t/input/load/4.csv": "succeeded", "t/input/update/5.csv": "succeeded"}, out
    status, what = out["owned_by_admin/input/load/x.csv"]
    assert status == other, (status, what)
    if other == "failed":  # a table the loader does not own: refused by the database, reported
        assert "permission denied" in what.lower(), what
