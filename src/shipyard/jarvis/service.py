"""Jarvis: validate a payload, post it, attach the file, and report every failure.

`Jarvis.send()` raises a ShipyardError when a notification is not delivered, after posting a
report to the error channel (default #jarvis-error-notifications) naming the caller's channel,
the reason and the fix. If that report cannot be posted either (bad token, Slack down, the bot
not in the error channel), it goes to the outbox file. Nothing is dropped silently.

`Jarvis.deliver()` never raises: it returns the structured result the Lambda handler and the
HTTP endpoint hand back ({"ok": true, "channel", "ts", ...} or {"ok": false, "error", "hint", ...}).

Without SLACK_BOT_TOKEN, notifications go to the outbox (`settings.outbox`, ./outbox.jsonl).
"""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from shipyard.errors import ShipyardError
from shipyard.jarvis.attachments import stage
from shipyard.jarvis.payload import Payload, escape, load_json, parse_payload
from shipyard.jarvis.slack import SlackSender
from shipyard.notify import Attachment, Notice, OutboxNotifier
from shipyard.redact import redact
from shipyard.settings import Settings, get_settings

log = logging.getLogger("shipyard.jarvis")

# How much of the caller's message the error report quotes (a section holds 3,000 characters).
_QUOTE_MAX = 2000


@dataclass
class SendResult:
    ok: bool
    channel: str | None = None
    channel_id: str | None = None
    ts: str | None = None
    file_id: str | None = None
    # Set when the notification went to the outbox file instead of Slack (no token).
    outbox: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def error_code(exc: ShipyardError) -> str:
    return str(exc.details.get("code") or type(exc).__name__)


def failure_dict(exc: ShipyardError) -> dict[str, Any]:
    """The structured error callers get back (Lambda, HTTP, `--json`)."""
    out: dict[str, Any] = {"ok": False, "error": error_code(exc), "message": redact(exc.message)}
    if exc.hint:
        out["hint"] = redact(exc.hint)
    out["retryable"] = exc.retryable
    for k in ("channel", "channel_id", "ts", "reported_to", "slack_method"):
        if exc.details.get(k) is not None:
            out[k] = exc.details[k]
    return out


def _raw_field(payload: Any, name: str) -> Any:
    if isinstance(payload, Payload):
        return getattr(payload, name)
    if isinstance(payload, dict):
        return payload.get(name)
    return None


class Jarvis:
    """One configured notifier: a Slack sender (or the outbox) plus the error channel."""

    def __init__(self, settings: Settings | None = None, *, sender: SlackSender | None = None) -> None:
        if settings is None:
                settings = get_settings()
        self.settings = settings
        self.error_channel = settings.jarvis.error_channel.lstrip("#").lower()
        self.outbox = OutboxNotifier(settings.outbox, echo=False)
        if sender is None and settings.slack_bot_token:
            sender = SlackSender.from_settings(settings)
        self.sender = sender

    @property
    def configured(self) -> bool:
        return self.sender is not None

    # -- the one path --------------------------------------------------------------------

    def send(self, payload: Any, *, local_roots: Sequence[str | Path] = ()) -> SendResult:
        """Deliver one payload (dict, JSON text or Payload); raise after reporting a failure.

        An attachment from a local folder must lie inside `jarvis.attachment_roots` or one of
        `local_roots` (folders the caller vouches for: the CLI user's own file, a tool's bucket)."""
        depth = self.settings.jarvis.max_json_depth
        if isinstance(payload, (str, bytes, bytearray)):
            try:  # decoded here so a report can name the channel even when a field is wrong
                payload = load_json(payload, max_depth=depth)
            except ShipyardError:
                pass  # parse_payload says what is wrong with it
        try:
            p = parse_payload(payload, max_depth=depth)
            return self._send(p, local_roots)
        except ShipyardError as exc:
            if exc.details.get("channel") is None:
                exc.details["channel"] = _raw_field(payload, "slack_channel")
            exc.details["reported_to"] = self.report(exc, payload)
            raise
        except Exception as exc:  # a bug: still reported, still structured
            log.exception("jarvis: unexpected error")
            err = ShipyardError(f"unexpected {type(exc).__name__}: {exc}",
                                hint="this is a bug in jarvis; the logs have the traceback",
                                code="internal_error", channel=_raw_field(payload, "slack_channel"))
            err.details["reported_to"] = self.report(err, payload)
            raise err from exc

    def deliver(self, payload: Any) -> dict[str, Any]:
        """Like send(), but returns the structured result and never raises."""
        try:
            return {"ok": True, **self.send(payload).to_dict()}
        except ShipyardError as exc:
            return failure_dict(exc)

    def _send(self, p: Payload, local_roots: Sequence[str | Path] = ()) -> SendResult:
        if self.sender is None:
            att = Attachment(p.attachment.bucket, p.attachment.key) if p.attachment else None
            self.outbox.send(Notice(tool="jarvis", level="info", title=p.heading or "",
                                    message=p.message, channel=p.slack_channel, attachment=att))
            return SendResult(ok=True, channel=p.slack_channel, outbox=str(self.outbox.path))
        channel_id = self.sender.resolve(p.slack_channel)
        # The attachment is checked and staged before anything is posted: a missing file must
        # not leave a message without it.
        with ExitStack() as stack:
            roots = [*self.settings.jarvis.attachment_roots, *local_roots]
            staged = (stack.enter_context(stage(p.attachment, roots=roots,
                                                max_bytes=self.settings.jarvis.max_attachment_bytes))
                      if p.attachment else None)
            try:
                ts = self.sender.post(channel_id, text=p.text(), blocks=p.blocks(), name=p.slack_channel)
            except ShipyardError as exc:
                if error_code(exc) in ("not_in_channel", "channel_not_found"):
                    self.sender.forget(p.slack_channel)  # the cache was stale (bot removed)
                raise
            file_id = None
            if staged is not None:
                try:
                    file_id = self.sender.upload(channel_id, str(staged.path), filename=staged.filename,
                                                 thread_ts=ts, name=p.slack_channel)
                except ShipyardError as exc:
                    exc.message = f"the message was posted but its attachment was not: {exc.message}"
                    exc.details.update(ts=ts, channel_id=channel_id)
                    raise
            log.info("jarvis: posted to #%s (%s)%s", p.slack_channel, ts,
                     f" with {staged.filename}" if staged else "")
            return SendResult(ok=True, channel=p.slack_channel, channel_id=channel_id, ts=ts, file_id=file_id)

    # -- the error channel ---------------------------------------------------------------

    def report(self, exc: ShipyardError, payload: Any) -> str:
        """Tell the error channel; fall back to the outbox. Returns where the report went."""
        channel = exc.details.get("channel") or _raw_field(payload, "slack_channel")
        channel = str(channel).lstrip("#") if channel else None
        log.warning("jarvis: could not deliver to #%s: %s", channel or "?", redact(exc))
        text, blocks = self._report_message(exc, payload, channel)
        if self.sender is not None and channel != self.error_channel:
            try:
                cid = self.sender.resolve(self.error_channel)
                self.sender.post(cid, text=text, blocks=blocks, name=self.error_channel)
                return "error_channel"
            except Exception as exc2:  # whatever happens, the report still lands in the outbox
                log.error("jarvis: the error channel #%s did not take the report either: %s",
                          self.error_channel, redact(exc2))
                exc.details["report_error"] = getattr(exc2, "message", None) or repr(exc2)
        self._to_outbox(exc, payload, channel)
        return "outbox"

    def _report_message(self, exc: ShipyardError, payload: Any,
                        channel: str | None) -> tuple[str, list[dict[str, Any]]]:
        # Everything the caller sent is escaped WITHOUT keeping mentions: quoting a failed
        # `<!channel>` message must not ping the error channel.
        def q(v: Any) -> str:
            return escape(redact(str(v)), mentions=False)

        target = f"#{q(channel)}" if channel else "(no channel given)"
        lines = [f"*Channel:* {target}", f"*Reason:* {q(exc.message)}"]
        if exc.hint:
            lines.append(f"*Fix:* {q(exc.hint)}")
        lines.append(f"*Error:* `{q(error_code(exc))}`")
        heading = _raw_field(payload, "heading")
        if heading:
            lines.append(f"*Heading:* {q(heading)}")
        att = _raw_field(payload, "attachment")
        if att:
            att = att.model_dump() if hasattr(att, "model_dump") else att
            if isinstance(att, dict):
                lines.append(f"*Attachment:* bucket `{q(att.get('bucket'))}`, key `{q(att.get('key'))}`")
        message = _raw_field(payload, "message")
        if message is None and not isinstance(payload, (dict, Payload)):
            message = payload  # not even an object: quote what arrived
        if message:
            quoted = q(message)
            if len(quoted) > _QUOTE_MAX:
                quoted = quoted[:_QUOTE_MAX] + f"… ({len(quoted) - _QUOTE_MAX:,} more characters)"
            lines.append("*Message:*\n" + "\n".join("> " + ln for ln in quoted.splitlines() or [""]))
        body = "\n".join(lines)
        title = f"Jarvis could not deliver a notification to {target}"
        blocks = [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}},
        ]
        return f"{title}\n{body}"[:40_000], blocks

    def _to_outbox(self, exc: ShipyardError, payload: Any, channel: str | None) -> None:
        fields = {"error": error_code(exc), "hint": exc.hint, "payload": payload if isinstance(payload, dict)
                  else (payload.model_dump() if isinstance(payload, Payload) else str(payload)[:10_000])}
        if exc.details.get("report_error"):
            fields["report_error"] = exc.details["report_error"]
        try:
            self.outbox.send(Notice(tool="jarvis", level="failure",
                                    title=f"could not deliver to #{channel or '?'}",
                                    message=exc.message, channel=self.error_channel, fields=fields))
        except Exception:  # the last resort failed: the log is all that is left
            log.exception("jarvis: could not write the report to the outbox %s", self.outbox.path)


_cache: dict[tuple[Any, ...], Jarvis] = {}
_cache_lock = threading.Lock()


def get_jarvis(settings: Settings | None = None) -> Jarvis:
    """A Jarvis for these settings, reused across calls (keeps the channel cache warm, e.g.
    across invocations of a warm Lambda)."""
    if settings is None:
        settings = get_settings()
    key = (settings.slack_bot_token, settings.slack_base_url, settings.jarvis.model_dump_json(),
           str(settings.outbox))
    with _cache_lock:
        j = _cache.get(key)
        if j is None:
            if len(_cache) > 16:
                _cache.clear()
            j = _cache[key] = Jarvis(settings)
        return j
