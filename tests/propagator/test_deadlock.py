"""A deadlock is the server asking for the transaction again: the propagator runs the file's
transaction again at once (a few times), instead of leaving the file for a later pass.

The deadlock here is real. Another session (a reporting job, say) holds an uncommitted ledger row
for the very file being loaded, so the load's ledger INSERT waits on it; that session then writes
a row the load has just written, which closes the cycle. The other session has written more rows,
so MariaDB picks the load as the victim (InnoDB rolls back the smaller transaction)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from shipyard.propagator.ledger import LEDGER_TABLE, key_hash
from tests.propagator.conftest import Harness, make_dest


@pytest.fixture
def hm(request, monkeypatch, bucket):
    harness = Harness(bucket, make_dest(request, monkeypatch, "mysql"))
    yield harness
    harness.close()


def test_a_deadlocked_load_is_run_again_and_lands_once(hm, caplog):
    import pymysql

    hm.create("orders")
    key = hm.put("orders", "input/load", "a.csv", "id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, 6)))
    h = key_hash(key, hm.store.head(key).etag)

    other = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=hm.dest.db)
    watch = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=hm.dest.db,
                            autocommit=True)
    try:
        cur = other.cursor()
        cur.execute("CREATE TABLE scratch (n INT PRIMARY KEY)")
        other.begin()
        cur.execute("INSERT INTO scratch SELECT seq FROM seq_1_to_3000")  # the heavier transaction
        cur.execute(f"INSERT INTO {LEDGER_TABLE} (key_hash, object_key, operation, table_name, status) "
                    "VALUES (%s, %s, 'load', 'orders', 'succeeded')", (h, key))

        outcome: list = []
        runner = threading.Thread(target=lambda: outcome.append(hm.p.process_key(key)))
        with caplog.at_level(logging.INFO, logger="shipyard.propagator"):
            runner.start()
            deadline = time.monotonic() + 30
            while True:  # until the load has written its rows and waits on our ledger row
                wcur = watch.cursor()
                wcur.execute("SELECT COUNT(*) FROM information_schema.processlist WHERE db = %s AND info LIKE %s",
                             (hm.dest.db, f"INSERT INTO `{LEDGER_TABLE}`%"))
                if wcur.fetchone()[0]:
                    break
                if time.monotonic() > deadline:
                    wcur.execute("SHOW FULL PROCESSLIST")
                    raise AssertionError(f"the load never waited on the ledger row: {outcome} {wcur.fetchall()}")
                time.sleep(0.02)
            cur.execute("INSERT INTO orders (id, name) VALUES (3, 'other')")  # the cycle: the load is rolled back
            other.rollback()  # as the other job would, and the ledger row it held is gone
            runner.join(60)
        assert not runner.is_alive()
    finally:
        other.close()
        watch.close()

    assert [o.status for o in outcome] == ["succeeded"], outcome
    assert hm.dest.rows("orders", "id, name") == [(i, f"n{i}") for i in range(1, 6)]
    assert hm.dest.query(f"SELECT COUNT(*) FROM {LEDGER_TABLE} WHERE key_hash = '{h}'") == [(1,)]
    assert any("Deadlock" in r.getMessage() and "run again" in r.getMessage() for r in caplog.records)


def test_sessions_are_reused_and_bounded_across_passes(hm):
    """Each pass of `watch` runs its tables on new worker threads: the idle sessions are kept per
    database, not per thread, so their number stays bounded however many passes run."""
    from shipyard.propagator.engines.mysql import MAX_IDLE

    for t in ("a", "b", "c"):
        hm.create(t)
    for n in range(6):
        for t in ("a", "b", "c"):
            hm.put(t, "input/load", f"{n}.csv", f"id,name\n{n},x\n")
        assert {o.status for o in hm.p.process_pending()} == {"succeeded"}
    sessions = hm.dest.query("SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE()")[0][0] - 1
    assert 1 <= sessions <= MAX_IDLE, sessions
    hm.p.close()
    assert hm.dest.query("SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE()")[0][0] == 1
