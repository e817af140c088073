"""Bounded memory: with `[lake] memory_limit` DuckDB spills instead of holding the batch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


@pytest.mark.slow
def test_memory_limit_bounds_the_ingest(local_env):
    import shutil

    # Baseline: the same process ingesting a tiny batch (Python, pyarrow, DuckDB, our imports).
    local_env.put("tiny.jsonl", dumps(make_events(100, seed=99, prefix="t-", users=10)))
    baseline = _ingest_peak_rss_kb("256MB")
    shutil.rmtree(local_env.lake.root)
    local_env.raw.delete("tiny.jsonl")

    pad = "lorem ipsum dolor sit amet " * 30
    for f in range(12):  # ~200 MB of JSON in one batch
        events = make_events(20000, seed=f, prefix=f"f{f}-", users=2000)
        for i, e in enumerate(events):
            e["payload"] = {"text": pad[: 500 + i % 300]}
        local_env.put(f"{f}.jsonl", dumps(events))
    limited = _ingest_peak_rss_kb("256MB")
    shutil.rmtree(local_env.lake.root)
    unlimited = _ingest_peak_rss_kb("16GB")
    print("peak RSS KB: baseline", baseline, "limited", limited, "unlimited", unlimited)
    # Above the baseline, the ~200 MB batch costs about the limit (DuckDB's limit covers its
    # buffer manager, not every allocation: 25% slack), never the batch on top of it.
    assert limited - baseline < 1.25 * 256_000, (baseline, limited, unlimited)
    assert limited < 0.7 * unlimited, (limited, unlimited)
