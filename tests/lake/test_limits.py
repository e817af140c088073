"""Decompression is streamed and bounded: a gzip bomb is refused with flat memory (issue 10.4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib

from .conftest import make_events


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
    p = subprocess.Popen([sys.executable, "-m", "shipyard.cli", "lake", "ingest", "events"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(p.pid, 0)
    err = p.stderr.read()
    assert os.waitstatus_to_exitcode(status) != 0
    assert "bomb.jsonl.gz" in err and "decompression bomb" in err, err
    assert usage.ru_maxrss < 400 * 1024, usage.ru_maxrss  # KB: memory stayed flat
    assert local_env.manifest_bytes() is None  # nothing was committed
    assert local_env.raw.exists("bomb.jsonl.gz")
