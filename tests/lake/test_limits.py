"""Decompression is streamed and bounded: a gzip bomb is refused with flat memory (issue 10.4)."""

from __future__ import annotations

import json
import os
import zlib

import pytest

from .conftest import make_events, run_cli_peak


def _bomb(mb: int) -> bytes:
    """A JSON record, then `mb` MB of whitespace (valid between records), gzipped ~1000:1."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [comp.compress((json.dumps(make_events(1)[0]) + "\n").encode())]
    out += [comp.compress(b" " * (1 << 20)) for _ in range(mb)]
    return b"".join(out) + comp.flush()


def test_a_gzip_bomb_is_refused_with_flat_memory(local_env, tmp_path):
    bomb = _bomb(300)  # 300 MB in ~0.3 MB
    assert len(bomb) < 2 << 20
    local_env.raw.put("bomb.jsonl.gz", bomb)
    local_env.put("ok.jsonl", make_events(3))
    env = dict(os.environ, SHIPYARD_CONFIG=str(tmp_path / "shipyard.toml"))
    code, _, err, peak_kb = run_cli_peak(["lake", "ingest", "events"], env)
    assert code != 0
    assert "bomb.jsonl.gz" in err and "decompression bomb" in err, err
    assert peak_kb < 400 * 1024, peak_kb  # memory stayed flat
    assert local_env.manifest_bytes() is None  # nothing was committed
    assert local_env.raw.exists("bomb.jsonl.gz")


def test_duckdb_failing_on_a_good_file_blames_no_file_and_commits_nothing(local_env, monkeypatch):
    # Too little memory for DuckDB's JSON reader: an error telling what to raise, the file is
    # not recorded as rejected (on_bad_file = "skip" would otherwise skip a good file for good).
    from shipyard.errors import ShipyardError
    from shipyard.lake.ingest import ingest
    from shipyard.lake.manifest import read_manifest
    from shipyard.settings import get_settings

    local_env.write_config(on_bad_file="skip")
    local_env.put("a.jsonl", make_events(50))
    monkeypatch.setenv("SHIPYARD_LAKE__MEMORY_LIMIT", "2MB")
    get_settings(fresh=True)
    with pytest.raises(ShipyardError) as ei:
        ingest("events")
    assert "memory_limit" in (ei.value.hint or "") and "a.jsonl" in ei.value.message
    assert local_env.manifest_bytes() is None
    monkeypatch.delenv("SHIPYARD_LAKE__MEMORY_LIMIT")
    get_settings(fresh=True)
    assert ingest("events").rows_written == 50
    assert not read_manifest(local_env.lake, "events").rejected
