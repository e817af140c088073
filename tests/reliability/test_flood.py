"""A flood: `size(120, 1000)` files over `size(6, 20)` tables dropped at once into a bucket a
live `watch` worker serves (local folder and S3 over HTTP), into PostgreSQL.

Every file is an upsert that appends its own ids and rewrites one shared row (id 0) with its
sequence number: all files load exactly once (ledger, counts), none is lost, and the shared
row ends with the LAST file's number while the worker's outcomes for a table come in key order
(one table's files are applied in key order). Prints files/s and p50/p95 drop-to-committed.
"""

from __future__ import annotations

import json
import statistics
import threading
import time

import pytest

from shipyard.notify import MemoryNotifier
from shipyard.propagator import Propagator
from shipyard.propagator.ledger import LEDGER_TABLE
from shipyard.settings import get_settings
from shipyard.store import open_store
from tests.reliability.conftest import make_dest, size

FILES = size(120, 1000)
TABLES = size(6, 20)
ROWS = 20
SPEC = {"column_specification": {"id": "BIGINT", "name": "VARCHAR(20)"}, "primary_key": ["id"]}

pytestmark = pytest.mark.timeout(size(150, 900))


def test_flood_of_files_into_a_watched_bucket(store_url, request, monkeypatch, record_property):
    dest = make_dest(request, monkeypatch, "postgres")
    store = open_store(store_url)
    committed: dict[str, float] = {}

    class Clock(MemoryNotifier):
        """The success notice is sent right after the commit and the move: its time is the file's."""

        def send(self, notice) -> None:
            if notice.level == "success" and "/succeeded/" in str(notice.fields.get("file", "")):
                committed[notice.fields["file"].replace("/succeeded/", "/input/update/")] = time.monotonic()
            super().send(notice)

    p = Propagator.from_settings(store_url, get_settings(fresh=True), notifier=Clock())
    for t in range(TABLES):
        store.put(dest.key(f"f{t:02d}", "schema/create", "c.json"), json.dumps(SPEC).encode())
    assert {o.status for o in p.process_pending()} == {"succeeded"}

    per_table = FILES // TABLES
    files = {t: [(dest.key(f"f{t:02d}", "input/update", f"{n:05d}.csv"),
                  ("id,name\n0,%d\n" % n + "".join(f"{(n + 1) * 1000 + i},r\n" for i in range(ROWS - 1))).encode())
                 for n in range(per_table)] for t in range(TABLES)}
    dropped: dict[str, float] = {}
    done: dict[str, float] = {}
    order: dict[str, list[str]] = {}
    outcomes: dict[str, list[str]] = {}
    stop = threading.Event()

    def on_outcome(o) -> None:
        outcomes.setdefault(o.key, []).append(o.status)
        if o.status == "succeeded":
            done[o.key] = committed.get(o.key, time.monotonic())
            order.setdefault(o.key.split("/input/")[0], []).append(o.key)

    worker = threading.Thread(target=p.watch, kwargs={"interval": 0.1, "stop": stop, "on_outcome": on_outcome},
                              daemon=True)
    worker.start()

    def drop(tables: list[int]) -> None:
        # One dropper per group of tables, each table's files in key order (as an exporter writes them).
        for batch in zip(*(files[t] for t in tables)):
            for key, body in batch:
                store.put(key, body)
                dropped[key] = time.monotonic()

    droppers = [threading.Thread(target=drop, args=([t for t in range(TABLES) if t % 4 == i],)) for i in range(4)]
    t0 = time.monotonic()
    for d in droppers:
        d.start()
    for d in droppers:
        d.join()
    deadline = time.monotonic() + size(120, 800)
    while time.monotonic() < deadline and len(done) < len(dropped):
        time.sleep(0.2)
    stop.set()
    worker.join(60)
    p.close()

    n = len(dropped)
    assert n == per_table * TABLES and len(done) == n, f"{len(done)} of {n} files committed"
    assert all(v.count("succeeded") == 1 and set(v) <= {"succeeded", "skipped"} for v in outcomes.values())
    for t in range(TABLES):
        prefix = dest.key(f"f{t:02d}", "input", "x").split("/input/")[0]
        assert order[prefix] == [k for k, _ in files[t]], f"table f{t:02d} applied out of key order"
        assert dest.query(f"SELECT count(*), count(DISTINCT id) FROM f{t:02d}") == [(per_table * (ROWS - 1) + 1,) * 2]
        assert dest.query(f"SELECT name FROM f{t:02d} WHERE id = 0") == [(str(per_table - 1),)]
        assert not list(store.list(prefix + "/input/")) and not list(store.list(prefix + "/failed/"))
    assert dest.query(f"SELECT count(*), count(DISTINCT object_key) FROM {LEDGER_TABLE} "
                      "WHERE operation = 'upsert'") == [(n, n)]
    lat = sorted(done[k] - dropped[k] for k in dropped)
    wall = max(done.values()) - t0
    p95 = lat[int(0.95 * (len(lat) - 1))]
    summary = (f"flood {store_url.split(':')[0] if store_url.startswith('s3') else 'local'}: {n} files / {TABLES} tables "
               f"in {wall:.1f}s = {n / wall:.1f} files/s; drop-to-committed p50 {statistics.median(lat):.2f}s, "
               f"p95 {p95:.2f}s, max {lat[-1]:.2f}s")
    record_property("flood", summary)
    print(summary)


def test_flood_through_s3_events_and_sqs(s3_bucket, request, monkeypatch):
    """The production trigger: S3 ObjectCreated notifications into an SQS (standard) queue,
    consumed by 2 concurrent `consume_queue` workers (as `watch --queue` runs), into PostgreSQL.
    Every file exactly once; SQS redelivers at least once, so duplicates must be no-ops. A
    standard queue does not keep order across messages, so each event first applies the earlier
    pending files of its table (`Propagator.process_in_order`): a table's files must still commit
    in key order. Commit order is read from PostgreSQL itself: each file's transaction takes the
    table's lock before its first write, so its transaction id (xmin of its rows) grows with the
    commit order of that table's files."""
    import boto3

    from shipyard.propagator.dispatch import PropagatorCache
    from shipyard.propagator.sqs import consume_queue

    dest = make_dest(request, monkeypatch, "postgres")
    name = s3_bucket.removeprefix("s3://")
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"flood-{name[-12:]}", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("s3").put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": {
            "Key": {"FilterRules": [{"Name": "prefix", "Value": "destination="}]}}}]})
    store = open_store(s3_bucket)
    n_files, tables, rows = size(60, 300), 5, 10
    with Propagator.from_settings(s3_bucket, get_settings(fresh=True), notifier=MemoryNotifier()) as p:
        for t in range(tables):
            store.put(dest.key(f"q{t}", "schema/create", "c.json"), json.dumps(SPEC).encode())
        assert {o.status for o in p.process_pending()} == {"succeeded"}
    dropped: dict[str, float] = {}
    t0 = time.monotonic()
    for n in range(n_files):
        t = n % tables
        key = dest.key(f"q{t}", "input/load", f"{n:05d}.csv")
        store.put(key, ("id,name\n" + "".join(f"{n * 100 + i},x\n" for i in range(rows))).encode())
        dropped[key] = time.monotonic()
    stop = threading.Event()
    cache = PropagatorCache(get_settings(fresh=True), notifier=MemoryNotifier())
    results: list = []

    def consumer() -> None:
        stats = consume_queue(url, cache, stop, wait_seconds=1)
        results.extend(stats.results)

    workers = [threading.Thread(target=consumer) for _ in range(2)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + size(120, 600)
    while time.monotonic() < deadline and any(store.exists(k) for k in list(dropped)[-5:]) or (
            time.monotonic() < deadline and dest.query(
                f"SELECT count(*) FROM _shipyard_ledger WHERE operation = 'load'")[0][0] < n_files):
        time.sleep(0.5)
    wall = time.monotonic() - t0
    stop.set()
    for w in workers:
        w.join(60)
    cache.close()
    ledger = dest.query("SELECT object_key, row_count FROM _shipyard_ledger WHERE operation = 'load'")
    assert sorted(ledger) == sorted((k, rows) for k in dropped)
    for t in range(tables):
        assert dest.query(f"SELECT count(*), count(DISTINCT id) FROM q{t}") == [(n_files // tables * rows,) * 2]
    for k in dropped:
        assert not store.exists(k) and not list(store.list(k.split("/input/")[0] + "/failed/"))
    statuses = [r.status for r in results if r.key in dropped]
    assert set(statuses) <= {"succeeded", "duplicate", "skipped", "deferred", "transient"}, statuses
    out_of_order = 0
    for t in range(tables):
        # ids are file_number * 100 + i: the files of table q{t} in the order they committed.
        files = [f for (f,) in dest.query(
            f"SELECT id / 100 FROM q{t} GROUP BY id / 100 ORDER BY min(xmin::text::bigint)")]
        out_of_order += sum(1 for a, b in zip(files, files[1:]) if b < a)
    print(f"flood sqs: {n_files} files / {tables} tables via S3 events + SQS, 2 consumers: {wall:.1f}s = "
          f"{n_files / wall:.1f} files/s; deliveries {len(statuses)} ({statuses.count('duplicate')} duplicate); "
          f"commits out of key order within a table: {out_of_order}")
    assert out_of_order == 0
