"""The lake's notices through shipyard.notify (./outbox.jsonl by default, Slack via jarvis).

Sent: an ingest that failed (with the raw file and line when known), raw objects skipped as
unreadable or misfit, an ingest that succeeded (on request: `--notify`), a compaction, an
erasure. A notice that cannot be sent is logged and never undoes or repeats the work.
"""

from __future__ import annotations

import logging
from typing import Any

from shipyard.notify import Level, Notice, get_notifier
from shipyard.redact import redact, redact_obj
from shipyard.settings import Settings, get_settings

log = logging.getLogger(__name__)


def notify(level: Level, title: str, message: str, fields: dict[str, Any] | None = None,
           settings: Settings | None = None) -> None:
    s = settings or get_settings()
    try:
        get_notifier(s).send(Notice("lake", level, redact(title), redact(message),
                                    channel=s.lake.channel, fields=redact_obj(fields or {})))
    except Exception as exc:  # a notification problem must not undo or repeat an ingest
        log.error("could not send the notice %r: %s", title, exc)
