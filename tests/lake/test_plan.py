"""The ingest plan (pure) and `lake ingest --dry-run`, which prints it and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.lake.config import validate_dataset
from shipyard.lake.manifest import Manifest
from shipyard.lake.plan import plan_ingest
from shipyard.store import ObjectInfo

from .conftest import make_events


def _info(key: str, size: int, etag: str | None = None) -> ObjectInfo:
    return ObjectInfo(key=key, size=size, etag=etag)


def test_plan_picks_new_raw_files_and_batches_them_by_size():
    ds = validate_dataset("ev", {"raw": "r", "lake": "l", "id": ["id"], "time": "ts", "batch_mb": 1},
                          Path("/x"))
    m = Manifest("ev", version=3, ingested={"a.jsonl": {"size": 10, "etag": None}},
                 rejected={"bad.json": {"size": 5, "etag": "e1"}})
    listing = [_info("c.jsonl.gz", 700_000), _info("a.jsonl", 10), _info("bad.json", 5, "e1"),
               _info("b.jsonl", 600_000), _info("a2.jsonl", 11), _info(".tmp.jsonl", 3),
               _info("x.jsonl._COPYING_", 4), _info("_SUCCESS", 0), _info("_shipyard/manifest.json", 9),
               _info("2026/11/30/07/stream-1-2026-11-30-07-00-00-5f2c", 100)]
    plan = plan_ingest(ds, m, listing)
    # by content, whatever the name (a Firehose key has no extension); hidden and temp names skipped
    assert [[i.key for i in b] for b in plan.batches] == [
        ["2026/11/30/07/stream-1-2026-11-30-07-00-00-5f2c", "a2.jsonl", "b.jsonl"], ["c.jsonl.gz"]]
    assert plan.already_done == 2
    assert plan.raw_bytes == 1_300_111
    # a rewritten file (same key, new size) is new again
    assert [i.key for i in plan_ingest(ds, m, [_info("a.jsonl", 12)]).files] == ["a.jsonl"]


def test_dry_run_prints_files_partitions_and_rows_and_writes_nothing(local_env):
    ev = make_events(50, days=2)
    local_env.put("a.jsonl", ev[:30])
    local_env.put("b.jsonl.gz", ev[20:], gz=True)
    r = CliRunner().invoke(app, ["lake", "ingest", "events", "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["batches"] == [["a.jsonl", "b.jsonl.gz"]]
    assert out["rows"] == 60  # before dedupe: 10 events are in both files
    days = sorted({e["ts"][:10] for e in ev})
    assert sorted(out["partitions"]) == [f"dt={d}" for d in days]
    assert sum(out["partitions"].values()) == 60
    assert local_env.manifest_bytes() is None and local_env.data_keys() == []
    r = CliRunner().invoke(app, ["lake", "ingest", "events", "--dry-run"])
    assert r.exit_code == 0 and "nothing was" in r.output and "b.jsonl.gz" in r.output
    assert local_env.manifest_bytes() is None


def test_demo_runs_on_its_embedded_firehose_shaped_raw_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIPYARD_CONFIG", str(tmp_path / "unused.toml"))  # restored afterwards
    r = CliRunner().invoke(app, ["lake", "demo", "--dir", str(tmp_path / "demo")])
    assert r.exit_code == 0, r.output
    assert "rows erased" in r.output and "│ 60 " in r.output  # 65 read, 5 re-sent dropped
    r = CliRunner().invoke(app, ["lake", "demo", "--dir", str(tmp_path / "demo")])
    assert r.exit_code != 0 and "already holds a demo lake" in str(r.exception)
