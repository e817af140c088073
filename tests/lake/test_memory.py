"""Bounded memory: with `[lake] memory_limit` DuckDB spills instead of holding the batch."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import dumps, make_events

_CHILD = (
    "import resource, runpy, sys\n"
    "sys.argv = ['shipyard', 'lake', 'ingest', 'events']\n"
    "try:\n"
    "    runpy.run_module('shipyard.cli', run_name='__main__')\n"
    "finally:\n"
    "    print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def _ingest_peak_rss_kb(limit: str | None) -> int:
    env = dict(os.environ)
    env.pop("SHIPYARD_LAKE__MEMORY_LIMIT", None)
    if limit:
        env["SHIPYARD_LAKE__MEMORY_LIMIT"] = limit
    p = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=180)
    assert "rows written" in p.stdout, p.stderr
    return int(p.stderr.rsplit("MAXRSS", 1)[1].split()[0])


def test_memory_limit_bounds_the_ingest(local_env):
    pad = "lorem ipsum dolor sit amet " * 30
    for f in range(12):  # ~200 MB of JSON in one batch
        events = make_events(20000, seed=f, prefix=f"f{f}-", users=2000)
        for i, e in enumerate(events):
            e["payload"] = {"text": pad[: 500 + i % 300]}
        local_env.put(f"{f}.jsonl", dumps(events))
    limited = _ingest_peak_rss_kb("256MB")
    import shutil

    shutil.rmtree(local_env.lake.root)
    unlimited = _ingest_peak_rss_kb(None)
    # Python + pyarrow + DuckDB themselves take ~150 MB; the batch must not come on top.
    assert limited < 150_000 + 256_000, (limited, unlimited)
    print("peak RSS KB", limited, unlimited)
    assert limited < 0.7 * unlimited, (limited, unlimited)
