"""A writer killed (SIGKILL) mid-publish leaves the lake as it was; the next run recovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from shipyard.lake.ingest import ingest
from shipyard.lake.publish import CRASH_ENV
from shipyard.lake.ops import compact, query

from .conftest import make_events


def _run_cli(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "shipyard.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_sigkill_mid_ingest_leaves_lake_unchanged(lake_env):
    events = make_events(400, days=3)
    lake_env.put("a.jsonl", events[:200])
    ingest("events")
    before_manifest = lake_env.manifest_bytes()
    before_keys = lake_env.data_keys()
    before_rows = lake_env.rows()

    lake_env.put("b.jsonl", events[150:])  # touches all three days: three files to publish
    p = _run_cli("lake", "ingest", "events", env_extra={CRASH_ENV: "2"})
    assert p.returncode == -signal.SIGKILL, p.stderr

    # The process died after putting two data files and before the commit.
    orphans = sorted(set(lake_env.data_keys()) - set(before_keys))
    assert len(orphans) == 2
    assert lake_env.manifest_bytes() == before_manifest
    assert lake_env.rows() == before_rows  # readers see exactly the old lake

    # The next run removes the orphans and ingests b.jsonl once.
    r = ingest("events")
    assert r.orphans_removed == 2 and r.rows_written == 200 and r.duplicates == 50
    assert not set(orphans) & set(lake_env.data_keys())
    assert query("SELECT count(*), count(DISTINCT event_id) FROM events").rows[0] == (400, 400)


def test_sigkill_mid_compact(local_env):
    events = make_events(90, days=2)
    for n in range(3):
        local_env.put(f"{n}.jsonl", events[n * 30:(n + 1) * 30])
        ingest("events")
    before_keys = local_env.data_keys()
    assert len(before_keys) == 6
    before_rows = local_env.rows()
    p = _run_cli("lake", "compact", "events", env_extra={CRASH_ENV: "1"})
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert local_env.rows() == before_rows
    r = compact("events")
    assert r.orphans_removed == 1 and r.files_before == 6 and r.files_after == 2
    assert local_env.rows() == before_rows
    assert len(local_env.data_keys()) == 2
