"""jarvis: Slack notifications for crons, jobs, servers and our own tools.

    from shipyard.jarvis import send
    send("<!channel> nightly load failed", channel="data-team", heading="ETL",
         attachment={"bucket": "slack-notification-framework-attachments", "key": "etl/errors.csv"})

The payload contract, the Lambda handler (`shipyard.jarvis.aws.handler`), the HTTP endpoint
(`shipyard jarvis serve`) and the CLI (`shipyard jarvis send`) all go through `Jarvis.send`.
See docs/jarvis.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from shipyard.jarvis.payload import AttachmentRef, Payload, escape, parse_payload
from shipyard.jarvis.service import Jarvis, SendResult, get_jarvis
from shipyard.settings import Settings

__all__ = ["send", "deliver", "Payload", "AttachmentRef", "parse_payload", "escape", "Jarvis",
           "SendResult", "get_jarvis"]


def _attachment(att: Any) -> Any:
    if att is None or isinstance(att, dict):
        return att
    if isinstance(att, AttachmentRef):
        return att.model_dump()
    if isinstance(att, (tuple, list)) and len(att) == 2:
        return {"bucket": att[0], "key": att[1]}
    if hasattr(att, "bucket") and hasattr(att, "key"):  # shipyard.notify.Attachment
        return {"bucket": att.bucket, "key": att.key}
    return att  # let the payload model say what is wrong


def send(message: str | None = None, channel: str | None = None, *, heading: str | None = None,
         attachment: Any = None, payload: Any = None, settings: Settings | None = None,
         local_roots: Sequence[str | Path] = ()) -> SendResult:
    """Send one notification; raises a ShipyardError (after reporting it to the error channel)
    when it is not delivered. Pass either `message` + `channel` or a whole `payload`.

    `attachment`: {"bucket", "key"}, a (bucket, key) pair or shipyard.notify.Attachment. A local
    folder as bucket must be inside `jarvis.attachment_roots` or `local_roots` (folders you vouch
    for); S3 needs neither.
    Without SLACK_BOT_TOKEN the notification is appended to the outbox (result.outbox says where).
    """
    if payload is None:
        payload = {"message": message, "slack_channel": channel}
        if heading is not None:
            payload["heading"] = heading
        if attachment is not None:
            payload["attachment"] = _attachment(attachment)
        payload = {k: v for k, v in payload.items() if v is not None}
    return get_jarvis(settings).send(payload, local_roots=local_roots)


def deliver(payload: Any, *, settings: Settings | None = None) -> dict[str, Any]:
    """Send one payload and return the structured result; never raises."""
    return get_jarvis(settings).deliver(payload)
