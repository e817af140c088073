"""jarvis as the project's Notifier: `shipyard.notify.get_notifier()` picks it when
SLACK_BOT_TOKEN is set (registered as "slack" in shipyard.notify.NOTIFIERS).

A notifier is called from inside other services (the propagator's watch loop, pulse's checks),
so `send()` never raises: a notice Slack does not take is reported to the error channel by
Jarvis, logged, and appended to the outbox file so nothing is lost.
"""

from __future__ import annotations

import logging
from typing import Any

from shipyard.jarvis.service import Jarvis
from shipyard.notify import Notice, OutboxNotifier
from shipyard.redact import redact, redact_obj
from shipyard.settings import Settings

log = logging.getLogger("shipyard.jarvis")

DEFAULT_CHANNEL = "data-loader-notification"
_ICONS = {"success": ":white_check_mark:", "failure": ":x:", "warning": ":warning:", "info": ":information_source:"}


def _value(v: Any) -> str:
    s = str(v)
    return s if len(s) <= 200 else s[:199] + "…"


def notice_payload(notice: Notice, default_channel: str = DEFAULT_CHANNEL) -> dict[str, Any]:
    """A Notice as a jarvis payload: title as heading, message plus fields compactly."""
    lines = [notice.message or notice.title]
    if notice.fields:
        lines.append(" · ".join(f"*{k}*: {_value(v)}" for k, v in notice.fields.items()))
    lines.append(f"_{notice.tool} · {notice.level} · {notice.time}_")
    payload: dict[str, Any] = {
        "heading": f"{_ICONS.get(notice.level, '')} {notice.title}".strip(),
        "message": "\n".join(lines),
        "slack_channel": notice.channel or default_channel,
    }
    if notice.attachment is not None:
        payload["attachment"] = {"bucket": str(notice.attachment.bucket), "key": notice.attachment.key}
    return payload


class SlackNotifier:
    """Sends notices to Slack through Jarvis; never raises."""

    def __init__(self, jarvis: Jarvis, *, default_channel: str = DEFAULT_CHANNEL,
                 outbox: OutboxNotifier | None = None) -> None:
        self.jarvis = jarvis
        self.default_channel = default_channel.lstrip("#")
        self.outbox = outbox or jarvis.outbox

    def send(self, notice: Notice) -> None:
        payload = notice_payload(notice, self.default_channel)
        # Like the outbox, Slack never sees a password or token a tool's message carried.
        payload.update(redact_obj({k: payload[k] for k in ("heading", "message")}))
        # A tool attaching a file from its own local bucket vouches for that folder.
        att = notice.attachment
        roots = [att.bucket] if att is not None and not str(att.bucket).startswith("s3://") else []
        try:
            self.jarvis.send(payload, local_roots=roots)
        except Exception as exc:  # a notifier must never take its caller's service down
            log.warning("jarvis: notice %r from %s not delivered to Slack (%s); kept in %s",
                        redact(notice.title), notice.tool, redact(exc), self.outbox.path)
            try:
                self.outbox.send(notice)
            except Exception:
                log.exception("jarvis: could not write the notice to the outbox either")


def from_settings(settings: Settings) -> SlackNotifier:
    """The factory shipyard.notify.get_notifier() calls (NOTIFIERS["slack"])."""
    return SlackNotifier(Jarvis(settings), default_channel=settings.jarvis.default_channel,
                         outbox=OutboxNotifier(settings.outbox, echo=False))
