"""SIGKILL at random points while a real `shipyard propagator process` loads and upserts.

Each round drops a large load file (new ids) and a large upsert file (some existing ids, many
new ones, one key repeated so the last row must win) for one table, starts the real CLI in a
subprocess and kills it with SIGKILL after a random delay spread over the whole run (start-up,
inspection, COPY / LOAD DATA / read_csv, the upsert statement, the ledger, commit, the move).
After every kill:
  * the table holds exactly the rows of the files the ledger lists (checked per file: the count
    and the sum of the ids of each file's marker), nothing of the others;
  * the ledger lists each committed file once, with its row count;
  * every file is under input/ (not committed, or committed and not yet moved) or under
    succeeded/ (committed); none under failed/.
At the end one run without a kill finishes the rest and every file has loaded exactly once.
Kill points: `size(5, 50)` per engine.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from shipyard.propagator import Propagator
from shipyard.propagator.ledger import LEDGER_TABLE
from shipyard.settings import get_settings
from shipyard.store import open_store
from tests.reliability.conftest import FULL, size

KILLS = size(5, 50)
LOAD_ROWS = size(50_000, 100_000)
UPSERT_NEW = size(15_000, 40_000)
UPSERT_OLD = 1_000  # existing ids each upsert file rewrites (disjoint between files)
TABLE = "crash"

pytestmark = pytest.mark.timeout(size(240, 1800))


def _csv(rows) -> bytes:
    return ("id,name\n" + "".join(f"{i},{n}\n" for i, n in rows)).encode()


class Model:
    """What the table must hold, given the set of files the ledger says committed."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.files: dict[str, dict] = {}  # key -> {marker, ids (set), rows_in_file, old (existing ids)}

    def add_load(self, key: str, r: int) -> bytes:
        ids = range(1_000_000 * (r + 1), 1_000_000 * (r + 1) + LOAD_ROWS)
        self.files[key] = {"marker": f"l{r}", "count": len(ids), "sum": sum(ids), "file_rows": len(ids), "old": 0}
        return _csv((i, f"l{r}") for i in ids)

    def add_upsert(self, key: str, r: int) -> bytes:
        old = list(range((r - 1) * UPSERT_OLD, r * UPSERT_OLD))
        new = list(range(500_000_000 + 1_000_000 * r, 500_000_000 + 1_000_000 * r + UPSERT_NEW))
        ids = old + new
        # The first key appears again at the end: the last row of a key wins.
        rows = [(ids[0], f"u{r}-first")] + [(i, f"u{r}") for i in ids[1:]] + [(ids[0], f"u{r}")]
        self.files[key] = {"marker": f"u{r}", "count": len(ids), "sum": sum(ids), "file_rows": len(rows),
                           "old": len(old), "old_sum": sum(old)}
        return _csv(rows)

    def expected(self, committed: set[str]) -> dict[str, tuple[int, int]]:
        base_count, base_sum = self.base, sum(range(self.base))
        out = {}
        for key, f in self.files.items():
            if key in committed:
                out[f["marker"]] = (f["count"], f["sum"])
                if f["old"]:
                    base_count -= f["old"]
                    base_sum -= f["old_sum"]
        out["b"] = (base_count, base_sum)
        return out


LEDGER_SQL = f"SELECT object_key, row_count FROM {LEDGER_TABLE} WHERE operation IN ('load', 'upsert')"
MARKER_SQL = f"SELECT name, count(*), sum(id) FROM {TABLE} GROUP BY name"


def _snapshot(dest) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """The ledger and the table read in ONE snapshot, once the killed client's server session is
    gone. A loader killed right after sending COMMIT still commits on the server a moment later
    (found by this test): two separate reads could straddle that commit."""
    if dest.kind == "postgres":
        import psycopg
        from psycopg.conninfo import make_conninfo

        with psycopg.connect(make_conninfo(dest.url, dbname=dest.db), autocommit=True) as c:
            _wait_idle(lambda: c.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                                         "AND pid <> pg_backend_pid()", (dest.db,)).fetchone()[0])
            c.autocommit = False
            c.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            ledger, marks = c.execute(LEDGER_SQL).fetchall(), c.execute(MARKER_SQL).fetchall()
            c.rollback()
    elif dest.kind == "mysql":
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=dest.db,
                               autocommit=True)
        try:
            cur = conn.cursor()

            def others() -> int:
                cur.execute("SELECT count(*) FROM information_schema.processlist WHERE db = %s "
                            "AND id <> CONNECTION_ID()", (dest.db,))
                return cur.fetchone()[0]

            _wait_idle(others)
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            cur.execute(LEDGER_SQL)
            ledger = cur.fetchall()
            cur.execute(MARKER_SQL)
            marks = cur.fetchall()
            conn.rollback()
        finally:
            conn.close()
    else:  # DuckDB: the killed process was the only one with the file open
        ledger, marks = dest.query(LEDGER_SQL), dest.query(MARKER_SQL)
    return ({k: int(n) for k, n in ledger}, {m: (int(c), int(s)) for m, c, s in marks})


def _wait_idle(count, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while count() and time.monotonic() < deadline:
        time.sleep(0.05)


def _ledger(dest) -> dict[str, int]:
    return _snapshot(dest)[0]


def _by_marker(dest) -> dict[str, tuple[int, int]]:
    return _snapshot(dest)[1]


def _child(bucket: str, tmp: Path) -> subprocess.Popen:
    # Temp files of the child (spooled copies, MySQL's rewrite) go to a folder we can inspect.
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.Popen([sys.executable, "-m", "shipyard.cli", "propagator", "process", "--bucket", bucket,
                             "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigkill_at_random_points_during_load_and_upsert(rdest, tmp_path, record_property):
    rng = random.Random(int(os.environ.get("SHIPYARD_RELIABILITY_SEED", "20261128")))
    bucket = str(tmp_path / "bucket")
    child_tmp = tmp_path / "child-tmp"
    child_tmp.mkdir()
    store = open_store(bucket)
    spec = {"column_specification": {"id": "BIGINT", "name": "VARCHAR(20)"}, "primary_key": ["id"]}
    base = (KILLS * 8 + 1) * UPSERT_OLD  # enough existing ids for every round's upsert
    with Propagator.from_settings(bucket, get_settings(fresh=True)) as p:
        import json

        store.put(rdest.key(TABLE, "schema/create", "t.json"), json.dumps(spec).encode())
        store.put(rdest.key(TABLE, "input/load", "0000-base.csv"), _csv((i, "b") for i in range(base)))
        assert [o.status for o in p.process_pending()] == ["succeeded", "succeeded"]
    model = Model(base)
    base_key = rdest.key(TABLE, "input/load", "0000-base.csv")

    # Calibrate: how long a run takes from start to exit, empty and with one round of files.
    t0 = time.monotonic()
    assert _child(bucket, child_tmp).wait(60) == 0
    startup = time.monotonic() - t0

    kills, rounds, finished_early = 0, 0, 0
    landed: Counter[str] = Counter()
    longest = startup * 4
    while kills < KILLS:
        assert rounds < KILLS * 8, f"only {kills} kills landed in {rounds} rounds"
        pending = [k for k in model.files if store.exists(k)]
        if len(pending) < 2:  # keep the backlog bounded: new files only when the last ones are done
            r = len(model.files) // 2 + 1
            lk, uk = rdest.key(TABLE, "input/load", f"{r:04d}-load.csv"), rdest.key(TABLE, "input/update", f"{r:04d}-up.csv")
            store.put(lk, model.add_load(lk, r))
            store.put(uk, model.add_upsert(uk, r))
        rounds += 1
        before = _ledger(rdest)
        delay = rng.uniform(startup * 0.7, longest)
        child = _child(bucket, child_tmp)
        t0 = time.monotonic()
        killed = False
        try:
            child.wait(delay)
            finished_early += 1
            longest = max(startup, min(longest, time.monotonic() - t0))
            assert child.returncode == 0, child.stderr.read().decode()[-2000:]
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
            kills += 1
            killed = True
            longest = max(longest, delay * 1.05)
        finally:
            child.stdout.close()
            child.stderr.close()

        # -- the invariant, after every kill --------------------------------------------------------
        def pending_after() -> list[str]:
            return [k for k in model.files if store.exists(k)]

        ledger, marks = _snapshot(rdest)
        committed = set(ledger) - {base_key}
        assert set(before) <= set(ledger)
        for key, f in model.files.items():
            pk_name = key.rsplit("/", 1)[1]
            succeeded = store.exists(rdest.key(TABLE, "succeeded", pk_name))
            in_input = store.exists(key)
            assert not store.exists(rdest.key(TABLE, "failed", pk_name)), key
            assert in_input != succeeded, (key, in_input, succeeded)  # exactly one place
            if key in committed:
                assert ledger[key] == f["file_rows"], (key, ledger[key])
            else:
                assert in_input, f"{key} is under succeeded/ but not in the ledger"
        if killed:  # where the kill landed, judged from what it left behind
            new = committed - set(before)
            if not new:
                landed["before the run's first commit"] += 1
            elif any(store.exists(k) for k in new):
                landed["after a commit, before its move"] += 1
            elif all(k in new for k in model.files if k not in before) and not pending_after():
                landed["after the last move"] += 1
            else:
                landed["between files (some committed and moved)"] += 1
        assert marks == model.expected(committed)

    # One run without a kill finishes the rest (and heals committed-but-unmoved files).
    child = _child(bucket, child_tmp)
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err.decode()[-2000:]
    ledger = _ledger(rdest)
    assert set(ledger) == set(model.files) | {base_key}
    assert _by_marker(rdest) == model.expected(set(model.files))
    for key in model.files:
        assert not store.exists(key) and store.exists(rdest.key(TABLE, "succeeded", key.rsplit("/", 1)[1]))
    leaked = sorted(p.name for p in child_tmp.iterdir())
    summary = (f"{rdest.kind}: {kills} SIGKILLs in {rounds} rounds ({finished_early} runs finished before their "
               f"kill time); startup {startup:.2f}s; where the kills landed: {dict(landed)}; "
               f"{len(model.files)} files; temp files left by killed children: {len(leaked)}")
    record_property("crash_summary", summary)
    print(summary)
    assert kills >= KILLS and (not FULL or len(landed) >= 2), summary
