"""Notifications: every tool tells people what happened through one `Notifier`.

Default: `OutboxNotifier` prints the notice and appends one JSON line to `./outbox.jsonl`
(`SHIPYARD_OUTBOX`). With `SLACK_BOT_TOKEN` set, `get_notifier()` returns jarvis's Slack
notifier instead. Notifiers are registered by name in `NOTIFIERS` (a plain dict of import
paths, so the Slack stack is imported only when used).
"""

from __future__ import annotations

import importlib
import json
import sys
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable
from shipyard.redact import redact_obj
from shipyard.settings import Settings, get_settings

Level = Literal["info", "success", "warning", "failure"]


@dataclass
class Attachment:
    """An object to attach: `bucket` is an S3 bucket name, `s3://...` or a local folder."""

    bucket: str
    key: str


@dataclass
class Notice:
    tool: str
    level: Level
    title: str
    message: str
    channel: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    attachment: Attachment | None = None
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.attachment is None:
            d.pop("attachment")
        return d


@runtime_checkable
class Notifier(Protocol):
    def send(self, notice: Notice) -> None: ...


_ICONS = {"success": "✅", "failure": "❌", "warning": "⚠️", "info": "ℹ️"}


class OutboxNotifier:
    """Prints each notice and appends it as one JSON line to the outbox file."""

    def __init__(self, path: str | Path = "outbox.jsonl", *, echo: bool = True) -> None:
        self.path = Path(path)
        self.echo = echo
        self._lock = threading.Lock()

    def send(self, notice: Notice) -> None:
        data = redact_obj(notice.to_dict())
        line = json.dumps(data, default=str, ensure_ascii=False)
        with self._lock:
            if self.path.parent != Path(""):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # One write() of a whole line in append mode: concurrent writers never interleave.
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        if self.echo:
            chan = f" #{notice.channel}" if notice.channel else ""
            print(f"{_ICONS.get(notice.level, '')} [{notice.tool}{chan}] {data['title']}: {data['message']}",
                  file=sys.stderr)


class MemoryNotifier:
    """Keeps notices in a list: for library callers that want to inspect them."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    def send(self, notice: Notice) -> None:
        self.notices.append(notice)


# name -> "module:factory"; a factory takes the Settings and returns a Notifier.
NOTIFIERS: dict[str, str] = {
    "outbox": "shipyard.notify:_outbox_from_settings",
    "slack": "shipyard.jarvis.notifier:from_settings",
}


def _outbox_from_settings(settings: Settings) -> Notifier:
    return OutboxNotifier(settings.outbox)


def get_notifier(settings: Settings | None = None, name: str | None = None) -> Notifier:
    """The configured notifier: Slack when SLACK_BOT_TOKEN is set, else the outbox."""
    if settings is None:
        settings = get_settings()
    if name is None:
        name = "slack" if settings.slack_bot_token else "outbox"
    module, _, attr = NOTIFIERS[name].partition(":")
    return getattr(importlib.import_module(module), attr)(settings)


__all__ = ["Attachment", "Notice", "Notifier", "OutboxNotifier", "MemoryNotifier", "get_notifier", "NOTIFIERS"]
