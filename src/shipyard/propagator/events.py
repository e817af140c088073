"""Object-created events from AWS, in every shape that can trigger the propagator (envelopes).

The shapes (all documented by AWS; fixtures in tests/propagator/events/):

* S3 event notification, delivered straight to Lambda, inside an SQS message body, or inside
  an SNS notification (itself inside an SQS body, or delivered straight to Lambda):
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
* the `s3:TestEvent` S3 sends when a notification is configured (nothing to do);
* EventBridge "Object Created" events, straight to Lambda or in an SQS body:
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html

Object keys in S3 notifications are URL-encoded form-style: "my file.csv" arrives as
"my+file.csv", "destination=duckdb" as "destination%3Dduckdb"; `unquote_plus` undoes both.
AWS's own Powertools decodes EventBridge keys the same way, so we do too.

`parse_lambda_event` / `parse_notification` turn JSON into `ObjectEvent`s; dispatch.py decides
what to do with each, sqs.py consumes a queue, aws.py is the Lambda handler.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from shipyard.errors import InputError


@dataclass(frozen=True)
class ObjectEvent:
    """One object event, whatever envelope it came in."""

    bucket: str
    key: str  # the real key from the bucket root, URL-decoded
    event_name: str  # "ObjectCreated:Put" (S3 notification) or "Object Created" (EventBridge)
    source: str  # "s3" or "eventbridge"
    etag: str | None = None
    size: int | None = None
    sequencer: str | None = None
    version_id: str | None = None

    @property
    def created(self) -> bool:
        return self.event_name.startswith("ObjectCreated") or self.event_name == "Object Created"


@dataclass
class Message:
    """A unit of delivery: one SQS message, or the whole of a direct invocation."""

    events: list[ObjectEvent] = field(default_factory=list)
    message_id: str | None = None
    receipt_handle: str | None = None
    receive_count: int | None = None
    note: str | None = None  # e.g. "s3:TestEvent"
    error: InputError | None = None  # a body that is not a notification we understand


@dataclass
class Invocation:
    """A Lambda event: `kind` is sqs, s3, sns, eventbridge or test."""

    kind: str
    messages: list[Message]


# --------------------------------------------------------------------------- parsing

def decode_key(raw: str) -> str:
    """S3 notifications URL-encode keys form-style ('+' for space, %XX for the rest)."""
    return unquote_plus(raw)


def _loads(body: str | bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, TypeError) as exc:
        text = body[:80] if isinstance(body, (str, bytes)) else body
        raise InputError(
            f"message body is not JSON ({exc}): {text!r}",
            hint="send S3 event notifications, SNS notifications of them, or EventBridge "
            "'Object Created' events to this queue/function",
        ) from exc


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _from_s3_record(record: dict[str, Any]) -> ObjectEvent:
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        obj = s3["object"]
        raw_key = obj["key"]
    except (KeyError, TypeError) as exc:
        raise InputError(f"S3 event record without s3.bucket.name / s3.object.key ({exc})",
                         hint="see the S3 event message structure in the AWS docs") from exc
    name = str(record.get("eventName", ""))
    return ObjectEvent(
        bucket=bucket,
        key=decode_key(raw_key),
        event_name=name[3:] if name.startswith("s3:") else name,
        source="s3",
        etag=(obj.get("eTag") or "").strip('"') or None,
        size=_int_or_none(obj.get("size")),
        sequencer=obj.get("sequencer"),
        version_id=obj.get("versionId"),
    )


def _from_eventbridge(event: dict[str, Any]) -> ObjectEvent:
    try:
        detail = event["detail"]
        bucket = detail["bucket"]["name"]
        obj = detail["object"]
        raw_key = obj["key"]
    except (KeyError, TypeError) as exc:
        raise InputError(f"EventBridge S3 event without detail.bucket.name / detail.object.key ({exc})",
                         hint="see 'EventBridge event message structure' in the S3 docs") from exc
    return ObjectEvent(
        bucket=bucket,
        key=decode_key(raw_key),
        event_name=str(event.get("detail-type", "")),
        source="eventbridge",
        etag=(obj.get("etag") or obj.get("eTag") or "").strip('"') or None,
        size=_int_or_none(obj.get("size")),
        sequencer=obj.get("sequencer"),
        version_id=obj.get("version-id"),
    )


def parse_notification(payload: Any) -> tuple[list[ObjectEvent], str | None]:
    """Events in one notification payload (a dict or its JSON text), and a note if it is a test.

    Accepts an S3 notification ({"Records": [...]}), S3's test event, an SNS notification
    envelope around either, an SNS-to-Lambda event, and an EventBridge S3 event.
    Raises InputError for anything else.
    """
    if isinstance(payload, (str, bytes, bytearray)):
        payload = _loads(payload)
    if not isinstance(payload, dict):
        raise InputError(f"notification is a JSON {type(payload).__name__}, not an object",
                         hint="expected an S3 event notification")
    if payload.get("Event") == "s3:TestEvent":
        return [], "s3:TestEvent"
    if payload.get("Type") == "Notification" and "Message" in payload:  # SNS envelope
        return parse_notification(payload["Message"])
    if payload.get("source") == "aws.s3" and "detail-type" in payload:
        return [_from_eventbridge(payload)], None
    records = payload.get("Records")
    if isinstance(records, list):
        events: list[ObjectEvent] = []
        note = None
        for record in records:
            if not isinstance(record, dict):
                raise InputError("an event record is not a JSON object")
            source = record.get("eventSource") or record.get("EventSource")
            if source == "aws:s3":
                events.append(_from_s3_record(record))
            elif source == "aws:sns" and isinstance(record.get("Sns"), dict):
                inner, inner_note = parse_notification(record["Sns"])
                events.extend(inner)
                note = note or inner_note
            else:
                raise InputError(f"unsupported event source {source!r} in Records",
                                 hint="the propagator accepts aws:s3, aws:sns (wrapping S3) "
                                 "and aws:sqs (wrapping either) records")
        return events, note
    raise InputError(
        "not an S3 event notification, SNS notification or EventBridge S3 event "
        f"(keys: {sorted(payload)[:8]})",
        hint="route only S3 ObjectCreated notifications (directly, via SNS or via EventBridge) "
        "to the propagator",
    )


def message_from_sqs(record: dict[str, Any]) -> Message:
    """One SQS message, as Lambda delivers it (messageId, body) or as ReceiveMessage returns it
    (MessageId, Body). A body we cannot read becomes `Message.error`, never an exception, so
    one bad message cannot fail its batch."""
    message_id = record.get("messageId") or record.get("MessageId")
    attrs = record.get("attributes") or record.get("Attributes") or {}
    msg = Message(
        message_id=message_id,
        receipt_handle=record.get("receiptHandle") or record.get("ReceiptHandle"),
        receive_count=_int_or_none(attrs.get("ApproximateReceiveCount")),
    )
    body = record.get("body", record.get("Body"))
    try:
        msg.events, msg.note = parse_notification(body if body is not None else "")
    except InputError as exc:
        msg.error = exc
    return msg


def parse_lambda_event(event: Any) -> Invocation:
    """Split a Lambda event into units of delivery.

    SQS batches give one Message per SQS record (each one acknowledged or failed on its own);
    direct S3, SNS and EventBridge invocations give a single Message. An event of no known shape
    raises InputError.
    """
    if not isinstance(event, dict):
        raise InputError(f"Lambda event is a JSON {type(event).__name__}, not an object")
    records = event.get("Records")
    if isinstance(records, list) and records and all(
            isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records):
        return Invocation("sqs", [message_from_sqs(r) for r in records])
    events, note = parse_notification(event)
    if note:
        kind = "test"
    elif event.get("source") == "aws.s3":
        kind = "eventbridge"
    elif isinstance(records, list) and records and (records[0].get("EventSource") == "aws:sns"):
        kind = "sns"
    else:
        kind = "s3"
    return Invocation(kind, [Message(events=events, note=note)])
