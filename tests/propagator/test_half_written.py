"""Issue 10: a file still being written into a local bucket is never loaded half-written."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from shipyard.settings import get_settings
from tests.helpers import wait_for

pytestmark = pytest.mark.parametrize("dest", ["duckdb"], indirect=True)  # the store's rule, not an engine's


def _settle(h, monkeypatch, seconds: float) -> None:
    monkeypatch.setenv("SHIPYARD_PROPAGATOR__SETTLE_SECONDS", str(seconds))
    h.p.settings = get_settings(fresh=True)


def test_a_file_being_copied_in_is_loaded_only_when_complete(h, bucket, monkeypatch):
    """A writer appends to the file in the bucket (as cp or an SFTP upload does) while `watch`
    polls: the file is picked up only once it has been still for settle_seconds, with every row."""
    h.create()
    _settle(h, monkeypatch, 0.8)
    path = Path(bucket) / h.dest.key("orders", "input/load", "slow.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    outcomes = []
    watcher = threading.Thread(target=h.p.watch, kwargs={"interval": 0.05, "stop": stop,
                                                          "on_outcome": outcomes.append})
    with open(path, "wb") as f:
        f.write(b"id,name\n")
        f.flush()
        watcher.start()
        for i in range(1, 6):  # five bursts, 0.3 s apart: never still for 0.8 s
            f.write(b"".join(b"%d,row\n" % (i * 1000 + j) for j in range(100)))
            f.flush()
            time.sleep(0.3)
    try:
        wait_for(lambda: outcomes, timeout=10)
    finally:
        stop.set()
        watcher.join(10)
    assert [o.status for o in outcomes] == ["succeeded"], outcomes
    assert outcomes[0].rows == 500
    assert h.dest.query("SELECT count(*) FROM orders")[0][0] == 500


def test_a_one_shot_process_waits_for_fresh_files(h, monkeypatch):
    """`shipyard propagator process` right after a copy: the pass waits for the settle time."""
    h.create()
    _settle(h, monkeypatch, 0.5)
    h.put("orders", "input/load", "fresh.csv", "id\n1\n")
    assert h.p.pending() == []  # too fresh to be picked up yet
    t0 = time.monotonic()
    [o] = h.p.process_pending()
    assert o.status == "succeeded" and time.monotonic() - t0 >= 0.3, o


@pytest.mark.parametrize("name", [".a.csv", "a.csv.tmp", "a.csv._COPYING_", "~$a.csv", "a.csv.part"])
def test_temporary_names_are_never_picked_up(h, name):
    h.create()
    key = h.put("orders", "input/load", name, "id\n1\n")
    assert h.p.process_pending() == []
    assert h.store.exists(key) and h.dest.rows("orders") == []
