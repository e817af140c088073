"""Exactly once: redelivery, crashes (mid-load and between commit and move), concurrency."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from shipyard.errors import TransientError
from shipyard.propagator.ledger import LEDGER_TABLE
from tests.propagator.conftest import ORDERS_SPEC



@pytest.fixture
def bucket(store_url):
    """These tests run on both stores: a local folder and an S3 bucket (moto's server over HTTP)."""
    return store_url

def _ledger(h) -> list[tuple]:
    return h.dest.query(f"SELECT object_key, row_count FROM {LEDGER_TABLE} WHERE operation <> 'create' ORDER BY object_key")


def test_same_event_twice_loads_once(h):
    h.create()
    key = h.put("orders", "input/load", "a.csv", "id\n1\n2\n")
    etag = h.store.head(key).etag
    first = h.p.process_key(key, etag=etag)
    again = h.p.process_key(key, etag=etag)  # a redelivered S3 event: the object is gone from input/
    assert first.status == "succeeded" and again.status == "duplicate"
    assert h.dest.rows("orders", "id") == [(1,), (2,)]
    assert len(_ledger(h)) == 1


def test_same_bytes_dropped_again_load_once(h):
    h.create()
    assert h.run("orders", "input/load", "a.csv", "id\n1\n").status == "succeeded"
    o = h.run("orders", "input/load", "a.csv", "id\n1\n")  # same key, same bytes
    assert o.status == "succeeded" and "ledger" in o.reason
    assert h.dest.rows("orders", "id") == [(1,)]
    # new bytes under the same name are a new object version: they load
    assert h.run("orders", "input/load", "a.csv", "id\n2\n").rows == 1
    assert h.dest.rows("orders", "id") == [(1,), (2,)]


def _process_in_child(h, bucket: str, crash_at: str) -> subprocess.CompletedProcess:
    h.p.close()  # a DuckDB file has one writing process: let the child have it
    env = {**os.environ, "SHIPYARD_TEST_CRASH_AT": crash_at}
    return subprocess.run([sys.executable, "-m", "shipyard.cli", "propagator", "process", "--bucket", bucket],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
@pytest.mark.parametrize("folder", ["input/load", "input/update"])
def test_crash_mid_load_leaves_nothing_and_heals(h, bucket, folder):
    h.create()
    h.p.process_key(h.put("orders", "input/load", "0.csv", "id,name\n1,old\n"))
    first = "1,new\n" if folder == "input/update" else ""
    key = h.put("orders", folder, "a.csv", "id,name\n" + first + "".join(f"{i},n{i}\n" for i in range(2, 3002)))
    r = _process_in_child(h, bucket, "before_commit")
    assert r.returncode == 137, r.stderr
    # Killed inside the transaction: no row of the file, no ledger row, the file still pending.
    assert h.dest.rows("orders", "id, name") == [(1, "old")]
    assert h.store.exists(key) and _ledger(h) == [(h.dest.key("orders", "input/load", "0.csv"), 1)]
    o = h.p.process_key(key)
    assert o.status == "succeeded" and o.rows == 3000 + len(first.splitlines())
    assert h.dest.query("SELECT count(*), count(DISTINCT id) FROM orders") == [(3001, 3001)]
    assert h.dest.rows("orders", "name", order="id")[0] == (("new",) if first else ("old",))


def test_crash_between_commit_and_move_heals_without_loading_twice(h, bucket):
    h.create()
    key = h.put("orders", "input/load", "a.csv", "id\n1\n2\n3\n")
    r = _process_in_child(h, bucket, "after_commit")
    assert r.returncode == 137, r.stderr
    assert h.store.exists(key)  # committed, but never moved
    assert h.dest.rows("orders", "id") == [(1,), (2,), (3,)]
    outs = h.p.process_pending()
    assert [o.status for o in outs] == ["succeeded"] and outs[0].rows == 3
    assert not h.store.exists(key) and h.store.exists(h.dest.key("orders", "succeeded", "a.csv"))
    assert h.dest.rows("orders", "id") == [(1,), (2,), (3,)]
    assert len(_ledger(h)) == 1


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
def test_two_files_for_one_table_at_once(h):
    h.create()
    keys = [h.put("orders", "input/load", f"{n}.csv", "id\n" + "".join(f"{n * 10000 + i}\n" for i in range(2000)))
            for n in range(1, 4)]
    outs: list = []
    errors: list = []

    def go(k):
        try:
            outs.append(h.p.process_key(k))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=go, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(o.status for o in outs) == ["succeeded"] * 3
    assert h.dest.query("SELECT count(*), count(DISTINCT id) FROM orders") == [(6000, 6000)]
    assert len(_ledger(h)) == 3


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
def test_two_propagators_redeliver_the_same_file_at_once(h, bucket):
    # Two workers (two Lambda invocations for one event) race on one object: it loads once.
    from shipyard.propagator import Propagator
    from shipyard.settings import get_settings

    h.create()
    key = h.put("orders", "input/load", "a.csv", "id\n" + "".join(f"{i}\n" for i in range(5000)))
    other = Propagator.from_settings(bucket, get_settings(), notifier=h.notes)
    outs, errors = [], []

    def go(p):
        try:
            outs.append(p.process_key(key))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=go, args=(p,)) for p in (h.p, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    # One loads; the other finds it in the ledger (heals) or gone from input/ (duplicate), or
    # loses the race on the move (the file vanished under it): never two loads.
    assert h.dest.query("SELECT count(*) FROM orders") == [(5000,)]
    assert len(_ledger(h)) == 1
    assert any(o.status == "succeeded" for o in outs)


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
def test_different_tables_load_in_parallel(h):
    for t in ("a", "b", "c"):
        h.create(t)
        h.put(t, "input/load", "1.csv", "id\n1\n")
        h.put(t, "input/load", "2.csv", "id\n2\n")
    outs = h.p.process_pending()
    assert len(outs) == 6 and all(o.status == "succeeded" for o in outs)
    for t in ("a", "b", "c"):
        assert h.dest.rows(t, "id") == [(1,), (2,)]


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
def test_schema_files_run_before_data_of_the_same_table(h):
    h.put("orders", "input/load", "a.csv", "id,zip\n1,411001\n")
    h.put("orders", "schema/update", "add.json", {"column_specification": {"zip": "INTEGER"}, "operation_type": "add"})
    h.put("orders", "schema/create", "c.json", {"column_specification": {"id": "INTEGER"}})
    outs = h.p.process_pending()
    assert [o.key.split("/table_name=orders/")[1] for o in outs] == [
        "schema/create/c.json", "schema/update/add.json", "input/load/a.csv"]
    assert all(o.status == "succeeded" for o in outs)
    assert h.dest.rows("orders", "id, zip") == [(1, 411001)]


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
@pytest.mark.parametrize("kind,url", [("postgres", "postgresql://postgres@127.0.0.1:{port}/postgres"),
                                      ("mysql", "mysql://root@127.0.0.1:{port}/test")])
def test_transient_failure_raises_and_leaves_the_file(bucket, monkeypatch, kind, url):
    from tests.helpers import free_port
    from tests.propagator.conftest import Dest, Harness
    from shipyard.settings import get_settings

    monkeypatch.setenv(f"SHIPYARD_DESTINATIONS__{kind.upper()}__URL", url.format(port=free_port()))
    get_settings(fresh=True)
    h = Harness(bucket, Dest(kind, kind, "sales"))
    key = h.put("orders", "input/load", "a.csv", "id\n1\n")
    with pytest.raises(TransientError):
        h.p.process_key(key)
    assert h.store.exists(key) and h.notes.notices == []
    # process_pending keeps going and reports the file as left for a retry
    [o] = h.p.process_pending()
    assert o.status == "skipped" and "retry" in o.reason and h.store.exists(key)


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_missing_database_is_reported(bucket, request, monkeypatch, kind):
    from tests.propagator.conftest import Dest, Harness
    from shipyard.settings import get_settings

    url = request.getfixturevalue("pg_admin_url" if kind == "postgres" else "mysql_url")
    monkeypatch.setenv(f"SHIPYARD_DESTINATIONS__{kind.upper()}__URL", url)
    get_settings(fresh=True)
    h = Harness(bucket, Dest(kind, kind, "no_such_db_here"))
    o = h.run("orders", "schema/create", "c.json", {"column_specification": {"id": "INTEGER"}})
    assert o.status == "failed"
    assert "database 'no_such_db_here' does not exist" in o.error["what"]
    assert "create" in o.error["how_to_fix"]


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
@pytest.mark.parametrize("kind", ["mysql"])
def test_mysql_ddl_interrupted_before_its_ledger_row_heals(request, monkeypatch, bucket, kind):
    # MySQL commits DDL implicitly: simulate the state a crash between the DDL and the ledger row
    # leaves (the change made, the spec pending) by making the change directly, then run the spec.
    import pymysql

    from tests.propagator.conftest import Harness, make_dest

    dest = make_dest(request, monkeypatch, kind)
    h = Harness(bucket, dest)
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=dest.db, autocommit=True)
    conn.cursor().execute("CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, name VARCHAR(50))")
    o = h.run("orders", "schema/create", "c.json",
              {"column_specification": {"id": "INTEGER", "name": "VARCHAR(50)"}, "primary_key": ["id"]})
    assert o.status == "succeeded", o
    conn.cursor().execute("ALTER TABLE orders ADD COLUMN city VARCHAR(20)")
    o = h.run("orders", "schema/update", "a.json", {"column_specification": {"city": "VARCHAR(20)"}, "operation_type": "add"})
    assert o.status == "succeeded", o
    # a different create for an existing table is still refused
    o = h.run("orders", "schema/create", "c2.json", {"column_specification": {"id": "INTEGER"}})
    assert o.status == "failed" and "already exists" in o.error["what"]
    assert dest.columns("orders") == ["id", "name", "city"]
    conn.close()
    h.close()


def test_events_out_of_order_still_apply_a_tables_files_in_key_order(h):
    # The events of a spec and two upserts of one key arrive newest first (SQS does not keep
    # order): each event applies its table's earlier pending files first.
    create = h.put("orders", "schema/create", "orders.json", ORDERS_SPEC)
    first = h.put("orders", "input/update", "2026-01-01.csv", "id,city\n1,Pune\n")
    second = h.put("orders", "input/update", "2026-01-02.csv", "id,city\n1,Delhi\n")
    assert h.p.process_in_order(second).status == "succeeded"
    assert h.dest.rows("orders", "id, city") == [(1, "Delhi")]
    assert h.p.process_in_order(first).status == "duplicate"
    assert h.p.process_in_order(create).status == "duplicate"
    assert h.dest.rows("orders", "id, city") == [(1, "Delhi")]


def test_temp_files_of_a_killed_loader_are_swept(tmp_path):
    from shipyard.store import spool_dir, spool_file
    from shipyard.propagator.runner import Propagator

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    leftover = spool_dir() / f"{dead}-abc.csv"  # what a SIGKILLed loader leaves behind
    leftover.write_text("id\n1\n")
    fd, mine = spool_file(".csv")  # a live process's file stays
    os.close(fd)
    Propagator.from_settings(str(tmp_path)).close()
    assert not leftover.exists()
    assert os.path.exists(mine)
    os.unlink(mine)
