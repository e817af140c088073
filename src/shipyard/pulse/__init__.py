"""shipyard pulse: uptime monitors as code.

Monitor files (Heartbeat's YAML plus alerting) are committed to a repo, synced to a bucket by
CI, mirrored onto the monitor host by `shipyard pulse sync`, and run by `shipyard pulse run`,
which checks, records history, alerts through the project's Notifier and serves a status page.

Library API:
    load_dir(path) -> LoadResult            parse + validate a folder of monitor files
    sync(source, target) -> SyncReport      mirror s3://bucket/prefix or a folder, atomically
    PulseService(config_dir).run(port=...)  the monitor (asyncio)
    open_history(url) -> HistoryStore       check history and incidents (SQLite / PostgreSQL)
"""

from shipyard.pulse.config import ConfigProblem, LoadResult, Monitor, load_dir, parse_text
from shipyard.pulse.history import HistoryStore, open_history
from shipyard.pulse.schedule import Schedule, parse_duration, parse_schedule
from shipyard.pulse.service import PulseService
from shipyard.pulse.sync import SyncReport, sync

__all__ = ["ConfigProblem", "LoadResult", "Monitor", "load_dir", "parse_text", "HistoryStore",
           "open_history", "Schedule", "parse_duration", "parse_schedule", "PulseService",
           "SyncReport", "sync"]
