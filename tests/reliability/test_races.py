"""Redelivery and races on every engine that runs here.

* Every event delivered 1-3 times, shuffled, to 4 concurrent workers (threads, each with its own
  Propagator, as 4 Lambda instances would be): every row lands exactly once, every file ends
  under succeeded/, none under failed/, each file is in the ledger once.
* A schema change racing a load on the same table: serialized; both succeed, or the load ends
  cleanly in failed/ with a report naming the column; never half of each.
"""

from __future__ import annotations

import json
import queue
import random
import threading

import pytest

from shipyard.errors import TransientError
from shipyard.notify import MemoryNotifier
from shipyard.propagator import Propagator
from shipyard.propagator.ledger import LEDGER_TABLE
from shipyard.settings import get_settings
from shipyard.store import open_store
from tests.reliability.conftest import size

pytestmark = pytest.mark.timeout(size(150, 900))

SPEC = {"column_specification": {"id": "BIGINT", "name": "VARCHAR(20)", "extra": "INTEGER"}, "primary_key": ["id"]}


def test_redelivered_shuffled_events_on_four_workers(rdest, tmp_path):
    rng = random.Random(11)
    bucket = str(tmp_path / "bucket")
    store = open_store(bucket)
    tables, per_table, rows = 3, size(8, 40), 500
    with Propagator.from_settings(bucket, get_settings(fresh=True), notifier=MemoryNotifier()) as p:
        for t in range(tables):
            store.put(rdest.key(f"r{t}", "schema/create", "c.json"), json.dumps(SPEC).encode())
        assert {o.status for o in p.process_pending()} == {"succeeded"}
    events, expected = [], {}
    for t in range(tables):
        for n in range(per_table):
            # Loads append new ids; upserts rewrite their own ids (so any order gives one answer).
            folder = "input/update" if n % 3 == 2 else "input/load"
            base = (t * 1000 + n) * rows
            key = rdest.key(f"r{t}", folder, f"{n:04d}.csv")
            store.put(key, ("id,name\n" + "".join(f"{base + i},{folder[6:]}{n}\n" for i in range(rows))).encode())
            events += [(key, store.head(key).etag)] * rng.randint(1, 3)
            expected[key] = rows
    rng.shuffle(events)
    work: queue.Queue = queue.Queue()
    for e in events:
        work.put(e)
    statuses: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        with Propagator.from_settings(bucket, get_settings(), notifier=MemoryNotifier()) as p:
            while True:
                try:
                    key, etag = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    statuses.append((key, p.process_key(key, etag=etag).status))
                except TransientError:
                    work.put((key, etag))  # as SQS would redeliver it
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert {s for _, s in statuses} <= {"succeeded", "duplicate"}, [x for x in statuses if x[1] not in
                                                                    ("succeeded", "duplicate")]
    for key in expected:
        assert any(k == key and s == "succeeded" for k, s in statuses), key
        name = key.rsplit("/", 1)[1]
        prefix = key.split("/input/")[0]
        assert store.exists(f"{prefix}/succeeded/{name}") and not store.exists(key)
        assert not store.exists(f"{prefix}/failed/{name}"), f"{key} ended under failed/"
    for t in range(tables):
        assert rdest.query(f"SELECT count(*), count(DISTINCT id) FROM r{t}") == [(per_table * rows,) * 2]
    ledger = rdest.query(f"SELECT object_key, row_count FROM {LEDGER_TABLE} WHERE operation <> 'create'")
    assert sorted(ledger) == sorted(expected.items())


@pytest.mark.parametrize("change", ["drop", "add"])
def test_schema_change_races_a_load(rdest, tmp_path, change):
    bucket = str(tmp_path / "bucket")
    store = open_store(bucket)
    trials, rows = size(4, 20), 3000
    seen: set[str] = set()
    for n in range(trials):
        table = f"race{n}"
        with Propagator.from_settings(bucket, get_settings(fresh=True), notifier=MemoryNotifier()) as p:
            store.put(rdest.key(table, "schema/create", "c.json"), json.dumps(SPEC).encode())
            assert p.process_pending()[0].status == "succeeded"
        if change == "drop":
            spec, column = {"column_specification": ["extra"], "operation_type": "drop"}, "extra"
        else:
            spec, column = {"column_specification": {"zip": "INTEGER"}, "operation_type": "add"}, "zip"
        alter = rdest.key(table, "schema/update", "u.json")
        load = rdest.key(table, "input/load", "l.csv")
        store.put(alter, json.dumps(spec).encode())
        store.put(load, (f"id,name,{column}\n" + "".join(f"{i},x,{i}\n" for i in range(rows))).encode())
        barrier = threading.Barrier(2)
        results: dict[str, object] = {}

        def run(key: str) -> None:
            with Propagator.from_settings(bucket, get_settings(), notifier=MemoryNotifier()) as p:
                barrier.wait()
                for _ in range(20):
                    try:
                        results[key] = p.process_key(key)
                        return
                    except TransientError as exc:  # a write conflict: retried, as a worker would
                        results[key] = exc
                    except BaseException as exc:  # noqa: BLE001
                        results[key] = exc
                        return

        threads = [threading.Thread(target=run, args=(k,)) for k in (alter, load)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        a, ld = results[alter], results[load]
        assert getattr(a, "status", a) == "succeeded", a
        assert getattr(ld, "status", None) in ("succeeded", "failed"), ld
        cols = rdest.columns(table)
        assert (column in cols) == (change == "add")
        count = rdest.query(f"SELECT count(*) FROM {table}")[0][0]
        if ld.status == "succeeded":
            assert count == rows and store.exists(rdest.key(table, "succeeded", "l.csv"))
            seen.add("load first" if change == "drop" else "schema first")
        else:
            # The load lost the race: nothing of it in the table, the file and its report in failed/.
            assert count == 0 and store.exists(rdest.key(table, "failed", "l.csv"))
            assert column in ld.error["what"], ld.error
            seen.add("schema first" if change == "drop" else "load first")
    print(f"{rdest.kind} {change}: orders seen: {sorted(seen)}")
