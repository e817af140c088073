"""Dependency faults under a live `watch` worker: the database connection cut mid-run and
refused for a while (TCPProxy in front of the real PostgreSQL / MariaDB), S3 answering 500 /
503 SlowDown or hanging (FaultyHTTPProxy in front of moto's S3 server).

The worker must retry with backoff and say so in its log, lose nothing (every file loads
exactly once, none ends in failed/), and recover without a restart.
"""

from __future__ import annotations

import logging
import random
import threading
import time

import pytest

from shipyard.notify import MemoryNotifier
from shipyard.propagator import Propagator
from shipyard.propagator.ledger import LEDGER_TABLE
from shipyard.settings import get_settings
from shipyard.store import open_store
from shipyard.store.s3 import S3Store
from tests.propagator.conftest import Dest
from tests.reliability.conftest import size
from tests.reliability.faults import FaultyHTTPProxy, TCPProxy

FILES = size(16, 60)
ROWS = size(20_000, 40_000)
SPEC = {"column_specification": {"id": "BIGINT", "name": "VARCHAR(20)"}, "primary_key": ["id"]}

pytestmark = pytest.mark.timeout(size(150, 600))


def _body(n: int) -> bytes:
    return ("id,name\n" + "".join(f"{n * 1_000_000 + i},f{n}\n" for i in range(ROWS))).encode()


class Worker:
    """`Propagator.watch` in a thread, recording every outcome."""

    def __init__(self, p: Propagator) -> None:
        self.p = p
        self.outcomes: list = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=p.watch, kwargs={"interval": 0.1, "stop": self.stop,
                                                               "on_outcome": self.outcomes.append}, daemon=True)

    def final(self) -> dict:
        return {o.key: o for o in self.outcomes if not (o.reason or "").startswith("retry later")}

    def wait_for(self, keys: set[str], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not keys <= set(self.final()):
            time.sleep(0.1)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(60)
        self.p.close()


def _check_exactly_once(dest: Dest, store, keys: list[str], outcomes: dict) -> None:
    assert [k for k in keys if k not in outcomes] == []
    assert {outcomes[k].status for k in keys} == {"succeeded"}, {k: outcomes[k].reason for k in keys}
    for k in keys:
        name = k.rsplit("/", 1)[1]
        assert not store.exists(k) and store.exists(dest.key("t", "succeeded", name))
        assert not store.exists(dest.key("t", "failed", name))
    total, distinct = dest.query("SELECT count(*), count(DISTINCT id) FROM t")[0]
    assert (total, distinct) == (len(keys) * ROWS, len(keys) * ROWS)
    ledger = dest.query(f"SELECT object_key, row_count FROM {LEDGER_TABLE} WHERE operation = 'load'")
    assert sorted(ledger) == sorted((k, ROWS) for k in keys)


def _messages(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_database_cut_and_refused_mid_run(kind, request, monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="shipyard")
    if kind == "postgres":
        request.getfixturevalue("pg_admin_url")
        db = request.getfixturevalue("pg_database")
        proxy = TCPProxy("127.0.0.1", 5432)
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres"
        monkeypatch.setenv("SHIPYARD_DESTINATIONS__POSTGRES__URL", url)
        dest = Dest("postgres", "postgres", db, "postgresql://postgres@127.0.0.1:5432/postgres")
    else:
        request.getfixturevalue("mysql_url")
        db = request.getfixturevalue("mysql_database")
        proxy = TCPProxy("127.0.0.1", 3306)
        monkeypatch.setenv("SHIPYARD_DESTINATIONS__MYSQL__URL", f"mysql://root@127.0.0.1:{proxy.port}/test")
        dest = Dest("mysql", "mysql", db)
    bucket = str(tmp_path / "bucket")
    store = open_store(bucket)
    worker = Worker(Propagator.from_settings(bucket, get_settings(fresh=True), notifier=MemoryNotifier()))
    try:
        import json

        store.put(dest.key("t", "schema/create", "t.json"), json.dumps(SPEC).encode())
        worker.thread.start()
        keys: list[str] = []
        cuts = [0]
        feeding = threading.Event()

        def chaos() -> None:
            # Cut whatever is in flight (COPY / LOAD DATA, the upsert, the ledger row, the commit)
            # at random moments while files arrive; once, refuse connections for a while.
            rng = random.Random(5)
            next_cut = time.monotonic() + rng.uniform(0.05, 0.25)
            while not feeding.is_set():
                time.sleep(0.002)
                if time.monotonic() >= next_cut and proxy.open_connections:
                    cuts[0] += proxy.cut()
                    next_cut = time.monotonic() + rng.uniform(0.05, 0.25)

        t = threading.Thread(target=chaos, daemon=True)
        t.start()
        for n in range(FILES):
            key = dest.key("t", "input/load", f"{n:04d}.csv")
            store.put(key, _body(n))
            keys.append(key)
            time.sleep(0.15)
            if n == FILES // 2:
                proxy.refuse_for(2.5)  # the server is down for a while
        feeding.set()
        t.join()
        cuts = cuts[0]
        worker.wait_for(set(keys), size(90, 400))
        assert worker.thread.is_alive()
        outcomes = worker.final()
    finally:
        worker.close()
        proxy.close()
    log = _messages(caplog)
    assert cuts > 0
    assert "will retry" in log and "watch: retrying in" in log and "backing off" in log, log[-3000:]
    assert "recovered after" in log
    assert ": unexpected " not in log, log[-3000:]  # every driver error was mapped (terminal / retryable)
    print(f"{kind}: {cuts} connections cut, {log.count('will retry')} retryable errors, "
          f"{log.count('backing off')} backoffs, {len(keys)} files")
    _check_exactly_once(dest, store, keys, outcomes)


def test_s3_errors_and_hangs(s3_server, s3_bucket, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="shipyard")
    proxy = FaultyHTTPProxy(s3_server)
    proxy.hang_seconds = 2.0
    direct = open_store(s3_bucket)  # the uploader talks to S3 directly; the worker through the proxy
    bucket = s3_bucket.removeprefix("s3://")
    dest = Dest("duckdb", "duckdb", "sales")
    p = Propagator(S3Store(bucket, endpoint_url=proxy.url), get_settings(fresh=True), notifier=MemoryNotifier())
    worker = Worker(p)
    try:
        import json

        direct.put(dest.key("t", "schema/create", "t.json"), json.dumps(SPEC).encode())
        worker.thread.start()
        worker.wait_for({dest.key("t", "schema/create", "t.json")}, 30)
        proxy.fail("503", count=20)  # S3 down while the bucket is idle: the polls themselves fail
        keys = []
        # More failures in a row than botocore's own retries absorb (4 attempts), so they reach
        # the worker: 503 SlowDown, 500, then every request hanging (closed after 2 s) for 6 s.
        faults = [("503", 12, 0.0), ("500", 12, 0.0), ("hang", 0, 6.0)]
        for n in range(FILES):
            key = dest.key("t", "input/load", f"{n:04d}.csv")
            direct.put(key, _body(n))
            keys.append(key)
            time.sleep(0.1)
            if faults and n % max(1, FILES // 4) == 1:
                mode, count, secs = faults.pop(0)
                proxy.fail(mode, count=count, seconds=secs)
        worker.wait_for(set(keys), size(100, 400))
        assert worker.thread.is_alive()
        outcomes = worker.final()
        failed_requests = proxy.failed
    finally:
        worker.close()
        proxy.close()
    log = _messages(caplog)
    assert failed_requests > 0
    # shipyard.aws's wording: "AWS answered 503 to ListObjectsV2" / "cannot reach AWS (...)".
    assert "AWS answered" in log or "cannot reach AWS" in log, log[-3000:]
    assert "watch: retrying in" in log and "recovered after" in log, log[-3000:]
    assert ": unexpected " not in log, log[-3000:]
    print(f"s3: {failed_requests} requests failed by the proxy, {log.count('backing off')} backoffs, "
          f"{len(keys)} files")
    _check_exactly_once(dest, direct, keys, outcomes)
