"""Lake test helpers: a shipyard.toml with one dataset over a store, and raw event files."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from shipyard.settings import get_settings
from shipyard.store import open_store


def make_events(n: int, *, seed: int = 1, start: str = "2021-03-01T00:00:00", days: int = 3,
                users: int = 20, prefix: str = "e") -> list[dict]:
    rnd = random.Random(seed)
    t0 = datetime.fromisoformat(start).replace(tzinfo=timezone.utc)
    uids = [str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(users)]
    out = []
    for i in range(n):
        t = t0 + timedelta(seconds=rnd.randrange(days * 86400))
        out.append({
            "event_id": f"{prefix}{i:06d}",
            "ts": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z",
            "user_id": rnd.choice(uids),
            "type": rnd.choice(["open", "tap", "pay"]),
            "amount": rnd.randrange(1, 10_000),
            "device": {"os": rnd.choice(["ios", "android"]), "version": rnd.randrange(10, 15)},
        })
    return out


def dumps(events: list[dict]) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


class LakeEnv:
    """One dataset `events` whose raw zone and lake live in `base` (a folder or s3:// URL)."""

    def __init__(self, base: str, tmp: Path, **options):
        self.base = base.rstrip("/")
        self.tmp = tmp
        self.raw = open_store(self.base + "/raw/events")
        self.lake = open_store(self.base + "/lake/events")
        self.options = options
        self.write_config()

    def write_config(self, **more) -> None:
        self.options.update(more)
        opts = {"raw": self.base + "/raw/events", "lake": self.base + "/lake/events",
                "id": ["event_id"], "time": "ts", "partition_by": ["dt"], **self.options}
        lines = ["[lake.datasets.events]"]
        for k, v in opts.items():
            if isinstance(v, dict):
                continue
            lines.append(f"{k} = {json.dumps(v)}")
        for k, v in opts.items():
            if isinstance(v, dict):
                lines.append(f"[lake.datasets.events.{k}]")
                lines += [f"{json.dumps(a)} = {json.dumps(b)}" for a, b in v.items()]
        (self.tmp / "shipyard.toml").write_text("\n".join(lines) + "\n")
        get_settings(fresh=True)

    def put(self, name: str, events: list[dict] | bytes, gz: bool = False) -> None:
        data = events if isinstance(events, bytes) else dumps(events)
        self.raw.put(name, gzip.compress(data) if gz else data)

    def rows(self, sql: str = "SELECT * FROM events ORDER BY event_id"):
        from shipyard.lake.ops import query

        return query(sql).rows

    def manifest_bytes(self) -> bytes | None:
        if not self.lake.exists("_shipyard/manifest.json"):
            return None
        with self.lake.open("_shipyard/manifest.json") as f:
            return f.read()

    def data_keys(self) -> list[str]:
        return sorted(i.key for i in self.lake.list("") if i.key.endswith(".parquet"))


@pytest.fixture
def lake_env(store_url, tmp_path) -> LakeEnv:
    """Parametrized over a local folder and an S3 bucket on moto's server."""
    return LakeEnv(store_url, tmp_path)


@pytest.fixture
def local_env(tmp_path) -> LakeEnv:
    return LakeEnv(str(tmp_path / "bucket"), tmp_path)


# The child reports its own peak RSS (VmHWM, per address space): the parent's RSS before exec
# would otherwise count (Linux's ru_maxrss keeps the pre-exec high-water mark of a forked
# pytest, hundreds of MB in the full suite).
_PEAK_CHILD = (
    "import runpy, sys\n"
    "sys.argv = ['shipyard'] + sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_module('shipyard.cli', run_name='__main__')\n"
    "finally:\n"
    "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
    "    print('PEAK_KB', hwm, file=sys.stderr)\n"
)


def run_cli_peak(args: list[str], env: dict) -> tuple[int, str, str, int]:
    """(exit code, stdout, stderr, peak RSS in KB) of `shipyard ARGS` in a fresh process."""
    p = subprocess.run([sys.executable, "-c", _PEAK_CHILD, *args], env=env, capture_output=True,
                       text=True, timeout=600)
    peak = int(p.stderr.rsplit("PEAK_KB", 1)[1].split()[0])
    return p.returncode, p.stdout, p.stderr.rsplit("PEAK_KB", 1)[0], peak
