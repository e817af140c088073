"""photon tests: deployment files for the embedded demo app, short bakes, no leftovers.

The local target's tests run the real router (HAProxy, installed by `make services`) in front
of real processes. Every test's processes carry its own tmp folder in their PHOTON_OWNER tag;
the fixture below fails the test if any survives it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from shipyard.photon.targets.local import procs
from tests.helpers import read_outbox

APP = [sys.executable, "-m", "shipyard.photon.demo_app", "--port", "${PORT}"]


@pytest.fixture(autouse=True)
def _photon_settings(monkeypatch):
    monkeypatch.setenv("SHIPYARD_PHOTON__TICK", "0.1")
    monkeypatch.setenv("SHIPYARD_PHOTON__STOP_TIMEOUT", "3")
    from shipyard.settings import get_settings

    get_settings(fresh=True)


@pytest.fixture(scope="session")
def haproxy() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if not found:
        pytest.fail("haproxy is not installed; run `make services` (apt-get install -y haproxy)")
    return found


def ours(root: Path) -> dict[int, str]:
    """Every live process tagged with an owner under `root`: pid -> role."""
    found = {}
    prefix = f"{root.resolve()}"
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            pid = int(entry.name)
            env = procs.tags_of(pid)
            if env.get(procs.OWNER, "").startswith(prefix) and procs.alive(pid):
                found[pid] = env.get(procs.ROLE, "")
    return found


@pytest.fixture
def local(haproxy, tmp_path):
    """Yields tmp_path; afterwards terminates whatever is left and fails on surviving processes."""
    yield tmp_path
    from shipyard.photon.runner import Photon

    p = Photon()
    for row in p.ls():
        p.terminate(row["service"], row["env"])
    left = ours(tmp_path)
    if left:
        procs.stop(list(left), 2)
        pytest.fail(f"processes survived the test: {left}")


def write(folder: Path, name: str = "deployment.json", *, env: str = "test", version: str = "v1",
          strategy: dict[str, Any] | None = None, bake: str = "0.3s", gates: dict[str, Any] | None = None,
          vars: dict[str, str] | None = None, service: str = "hello", **extra: Any) -> Path:
    doc: dict[str, Any] = {
        "service": service, "env": env, "version": version,
        "container": {"health": {"path": "/health", "start_timeout": "10s"}},
        "local": {"command": APP},
        "config": {"vars": {"VERSION": version, **(vars or {})}},
        "deploy": {"strategy": strategy or {"type": "canary", "percent": 10, "bake": "0.5s"}, "bake": bake,
                   "gates": gates or {"max_error_rate": 0.05, "window": "5s", "min_requests": 10}},
    }
    for k, v in extra.items():
        doc[k] = v
    path = folder / name
    path.write_text(json.dumps(doc))
    return path


def outbox(folder: Path) -> list[dict[str, Any]]:
    return read_outbox(folder / "outbox.jsonl")
