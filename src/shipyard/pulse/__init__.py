"""shipyard pulse: uptime monitors as code.

Monitor files (Heartbeat's YAML plus alerting) are committed to a repo, synced to a bucket by
CI, mirrored onto the monitor host by `shipyard pulse sync` (or `pulse run --sync-from`), and
run by `shipyard pulse run`, which checks, records history, alerts through the project's
Notifier and serves a status page.

Library API:
    load_dir(path) -> LoadResult            parse + validate a folder of monitor files
    sync(source, target) -> SyncReport      mirror s3://bucket/prefix or a folder, atomically
    PulseService(config_dir).run(port=...)  the monitor (asyncio)
    open_history(url) -> HistoryStore       check history and incidents (SQLite / PostgreSQL)
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ConfigProblem": "model", "Monitor": "model", "LoadResult": "config", "load_dir": "config",
    "parse_text": "config", "HistoryStore": "history", "open_history": "history", "Schedule": "schedule",
    "parse_duration": "schedule", "parse_schedule": "schedule", "PulseService": "service",
    "SyncReport": "sync", "sync": "sync",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    # Loaded on first use: `shipyard --help` must not pay for httpx, FastAPI and uvicorn
    # (about a second) just because the pulse CLI is mounted.
    if name not in _WHERE:
        raise AttributeError(f"module 'shipyard.pulse' has no attribute {name!r}")
    return getattr(importlib.import_module(f"shipyard.pulse.{_WHERE[name]}"), name)
