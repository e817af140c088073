"""Object-created events from AWS, in every shape that can trigger the propagator.

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

Library first: `parse_lambda_event` / `parse_notification` turn JSON into `ObjectEvent`s,
`route_event` decides whether an event is ours and which store key it is, `process_event`
runs one through a propagator and never raises, and `consume_queue` is the SQS consumer used
by `shipyard propagator watch --queue URL`. The Lambda handler (`shipyard.propagator.aws`)
is a thin client of the same functions.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol
from urllib.parse import unquote_plus

from shipyard.errors import ConfigError, InputError, ShipyardError, TransientError
from shipyard.retry import Backoff

log = logging.getLogger("shipyard.propagator.events")
# One JSON line per record handled; the Lambda handler sends this logger to stdout as-is.
record_log = logging.getLogger("shipyard.propagator.records")

# The folders the propagator writes to. Its own moves (a server-side copy) and error reports
# create ObjectCreated events too; they must never be processed.
OWN_FOLDERS = ("succeeded", "failed")


class PropagatorLike(Protocol):
    def process_in_order(self, key: str, *, etag: str | None = None,
                         sequencer: str | None = None) -> Any: ...


# store URL (s3://bucket[/prefix]) -> a propagator for that store
PropagatorFactory = Callable[[str], PropagatorLike]


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


@dataclass
class RecordResult:
    """What happened to one event. `retry` is True only for transient or unexpected errors."""

    bucket: str
    key: str
    # succeeded|failed|skipped|duplicate (from the runner); ignored, transient, error, deferred
    status: str
    seconds: float = 0.0
    retry: bool = False
    table: str | None = None
    rows: int | None = None
    moved_to: str | None = None
    reason: str | None = None
    error: str | None = None
    source: str | None = None
    message_id: str | None = None
    receive_count: int | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"bucket": self.bucket, "key": self.key, "status": self.status,
               "seconds": round(self.seconds, 3)}
        for name in ("table", "rows", "moved_to", "reason", "error", "source", "message_id",
                     "receive_count"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.retry:
            out["retry"] = True
        return out


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


# --------------------------------------------------------------------------- routing

def normalize_prefix(prefix: str | None) -> str:
    return (prefix or "").strip("/")


def own_folder(key: str) -> str | None:
    """'succeeded' or 'failed' if `key` is in a folder the propagator writes to, else None.

    The layout puts them right after the table: destination=/database=/table_name=/<folder>/...
    """
    parts = key.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.startswith("table_name=") and parts[i + 1] in OWN_FOLDERS:
            return parts[i + 1]
    return None


@dataclass(frozen=True)
class Route:
    store_url: str  # s3://bucket or s3://bucket/prefix
    key: str  # relative to the store, what Propagator.process_key takes


def route_event(event: ObjectEvent, prefix: str | None = None,
                bucket: str | None = None) -> tuple[Route | None, str | None]:
    """Where an event goes: (Route, None), or (None, why it is ignored).

    `bucket`, when given, is the only bucket served (events of other buckets are ignored).
    """
    if not event.created:
        return None, f"{event.event_name or 'unknown'} is not an object-created event"
    if bucket and event.bucket != bucket:
        return None, f"bucket {event.bucket!r} is not the one served ({bucket!r})"
    p = normalize_prefix(prefix)
    key = event.key
    if p:
        if not key.startswith(p + "/"):
            return None, f"outside the configured prefix {p!r}"
        key = key[len(p) + 1:]
    folder = own_folder(key)
    if folder:
        return None, f"under {folder}/ (written by the propagator itself)"
    store_url = f"s3://{event.bucket}/{p}" if p else f"s3://{event.bucket}"
    return Route(store_url, key), None


# --------------------------------------------------------------------------- processing

def _outcome_field(outcome: Any, name: str) -> Any:
    value = getattr(outcome, name, None)
    if isinstance(value, dict):  # the runner's error report: its one-line "what" is enough here
        return value.get("what") or json.dumps(value, default=str)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def table_of(key: str) -> str | None:
    """`destination=../database=../table_name=..` of a layout key (lower-cased), else None."""
    parts = key.split("/")
    if len(parts) > 3 and parts[0].startswith("destination=") and parts[2].startswith("table_name="):
        return "/".join(parts[:3]).lower()
    return None


def process_event(event: ObjectEvent, get_propagator: PropagatorFactory, *,
                  prefix: str | None = None, bucket: str | None = None,
                  message: Message | None = None,
                  held: dict[str, str] | None = None) -> RecordResult:
    """Run one event through the propagator. Never raises: the result says what happened and
    whether a retry can help (transient errors, and anything unexpected, which leaves the file
    where it is).

    `held` (shared by the records of one batch) keeps a table's order: once a file of a table
    needs a retry, later files of that table in the batch are deferred (retried too) rather than
    run ahead of it - a load must not overtake the create or the earlier load it follows. This is
    what `process_pending` does for a polled bucket."""
    started = time.perf_counter()
    result = RecordResult(bucket=event.bucket, key=event.key, status="ignored",
                          source=event.source,
                          message_id=message.message_id if message else None,
                          receive_count=message.receive_count if message else None)
    route, reason = route_event(event, prefix, bucket)
    table = table_of(route.key) if route is not None else None
    table_id = f"{route.store_url}/{table}" if route is not None and table else None
    if route is None:
        result.reason = reason
    elif held is not None and table_id in held:
        result.status, result.retry = "deferred", True
        result.reason = (f"{held[table_id]} of the same table needs a retry; this file waits for it "
                         "to keep the table's order")
    else:
        try:
            propagator = get_propagator(route.store_url)
            # Earlier pending files of the table go first: events come in any order.
            outcome = propagator.process_in_order(route.key, etag=event.etag, sequencer=event.sequencer)
        except TransientError as exc:
            result.status, result.retry, result.error = "transient", True, str(exc)
        except ShipyardError as exc:
            # A terminal problem the runner did not turn into an Outcome (the file was not
            # moved to failed/): retrying costs little, losing the file would cost more.
            result.status, result.retry = "error", True
            result.error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug; keep the event so it is retried, then dead-lettered
            log.exception("unexpected error processing s3://%s/%s", event.bucket, event.key)
            result.status, result.retry = "error", True
            result.error = f"{type(exc).__name__}: {exc}"
        else:
            result.status = str(getattr(outcome, "status", "succeeded"))
            for name in ("table", "rows", "moved_to", "reason", "error"):
                setattr(result, name, _outcome_field(outcome, name))
        if result.retry and held is not None and table_id:
            held.setdefault(table_id, route.key)
    result.seconds = time.perf_counter() - started
    record_log.info(json.dumps(result.to_json(), default=str, ensure_ascii=False))
    return result


def handle_message(message: Message, get_propagator: PropagatorFactory, *,
                   prefix: str | None = None, bucket: str | None = None,
                   held: dict[str, str] | None = None) -> list[RecordResult]:
    """Process every event of one message, each on its own (`held`: see process_event)."""
    if message.error is not None:
        record_log.info(json.dumps({"status": "unreadable", "message_id": message.message_id,
                                    "error": str(message.error), "retry": True},
                                   ensure_ascii=False))
        return []
    if message.note:
        log.info("ignoring %s (message %s)", message.note, message.message_id)
    return [process_event(e, get_propagator, prefix=prefix, bucket=bucket, message=message,
                          held=held) for e in message.events]


def message_done(message: Message, results: Iterable[RecordResult]) -> bool:
    """True when the message can be deleted: readable, and no record needs a retry."""
    return message.error is None and not any(r.retry for r in results)


class PropagatorCache:
    """One Propagator per store URL, kept for the life of the process (a warm Lambda, a
    `watch --queue` loop) so connections and the parsed settings are reused."""

    def __init__(self, settings: Any = None, notifier: Any = None,
                 build: Callable[..., PropagatorLike] | None = None) -> None:
        self.settings = settings
        self.notifier = notifier
        self._build = build
        self._by_url: dict[str, PropagatorLike] = {}
        self._lock = threading.Lock()

    def __call__(self, store_url: str) -> PropagatorLike:
        with self._lock:
            found = self._by_url.get(store_url)
            if found is None:
                build = self._build
                if build is None:
                    from shipyard.propagator.runner import Propagator

                    build = Propagator.from_settings
                found = build(store_url, settings=self.settings, notifier=self.notifier)
                self._by_url[store_url] = found
            return found

    def close(self) -> None:
        """Close every propagator's connections (end of `watch --queue`, tests)."""
        with self._lock:
            for propagator in self._by_url.values():
                close = getattr(propagator, "close", None)
                if callable(close):
                    close()
            self._by_url.clear()


# --------------------------------------------------------------------------- SQS consumer

_SQS_REGION = re.compile(r"sqs[.-]([a-z0-9-]+)\.amazonaws\.com")


def sqs_client(queue_url: str) -> Any:
    """A boto3 SQS client; the region comes from the queue URL when not configured (AWS's
    queue URLs name it: https://sqs.<region>.amazonaws.com/<account>/<name>)."""
    import boto3

    session = boto3.session.Session()
    kwargs: dict[str, Any] = {}
    m = _SQS_REGION.search(queue_url)
    if session.region_name is None:
        kwargs["region_name"] = m.group(1) if m else "us-east-1"
    return session.client("sqs", **kwargs)


_SQS_MISSING = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_SQS_DENIED = {"AccessDenied", "AccessDeniedException", "InvalidClientTokenId",
               "UnrecognizedClientException", "InvalidAddress"}


def map_sqs_error(exc: BaseException, queue_url: str) -> ShipyardError:
    """botocore errors -> ConfigError (cannot work as configured) or TransientError."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _SQS_MISSING:
            return ConfigError(f"SQS queue {queue_url} does not exist",
                               hint="check --queue (the full queue URL, as `aws sqs get-queue-url` prints it)")
        if code in _SQS_DENIED:
            return ConfigError(f"SQS refused access to {queue_url} ({code})",
                               hint="the credentials need sqs:ReceiveMessage, sqs:DeleteMessage "
                               "and sqs:ChangeMessageVisibility on the queue")
        return TransientError(f"SQS error on {queue_url}: {code or exc}; will retry")
    if isinstance(exc, (NoCredentialsError, NoRegionError)):
        return ConfigError(f"cannot call SQS: {exc}",
                           hint="configure AWS credentials (env, profile or role) and AWS_DEFAULT_REGION")
    return TransientError(f"cannot reach SQS ({type(exc).__name__}: {exc}); will retry")


@dataclass
class QueueStats:
    received: int = 0
    deleted: int = 0
    kept: int = 0  # left for a retry once their visibility timeout expires
    results: list[RecordResult] = field(default_factory=list)


def consume_queue(queue_url: str, propagator_factory: PropagatorFactory,
                  stop: threading.Event | None = None, *, prefix: str | None = None,
                  bucket: str | None = None, wait_seconds: int = 20, max_messages: int = 10, drain: bool = False,
                  client: Any = None) -> QueueStats:
    """Long-poll an SQS queue of S3 (or SNS- or EventBridge-wrapped) events until `stop` is set.

    Each message's records are processed independently. A message is deleted when every record
    ended (succeeded, failed -> moved to failed/, skipped, duplicate, ignored); a message with a
    transient failure, or a body we cannot read, is left alone: it becomes visible again when its
    visibility timeout expires, and lands in the queue's dead-letter queue after maxReceiveCount
    receives. `drain=True` returns after the first empty receive (cron jobs, tests).
    `prefix` / `bucket` restrict what is served, as in `route_event`.
    Raises ConfigError when the queue cannot be used at all; rides out transient SQS errors.
    """
    stop = stop or threading.Event()
    sqs = client or sqs_client(queue_url)
    stats = QueueStats()
    backoff = Backoff(base=1.0, cap=30.0)
    while not stop.is_set():
        try:
            resp = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=max(1, min(max_messages, 10)),  # SQS's maximum is 10
                WaitTimeSeconds=max(0, min(wait_seconds, 20)),  # and 20 s for long polling
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except Exception as exc:
            err = map_sqs_error(exc, queue_url)
            if not err.retryable:
                raise err from exc
            delay = backoff.failed()
            log.warning("%s (next try in %.0f s)", err.message, delay)
            stop.wait(delay)
            continue
        backoff.succeeded()
        received = resp.get("Messages", [])
        if not received:
            if drain:
                break
            continue
        stats.received += len(received)
        done: list[dict[str, str]] = []
        held: dict[str, str] = {}
        for raw in received:
            if stop.is_set():
                break  # not started: it reappears after its visibility timeout
            message = message_from_sqs(raw)
            results = handle_message(message, propagator_factory, prefix=prefix, bucket=bucket,
                                     held=held)
            stats.results.extend(results)
            if message_done(message, results):
                done.append({"Id": str(len(done)), "ReceiptHandle": raw["ReceiptHandle"]})
            else:
                stats.kept += 1
        if done:
            stats.deleted += _delete(sqs, queue_url, done)
    return stats


def _delete(sqs: Any, queue_url: str, entries: list[dict[str, str]]) -> int:
    try:
        resp = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
    except Exception as exc:
        # Not deleted means delivered again: harmless, the ledger makes it a duplicate no-op.
        log.warning("could not delete %d message(s): %s", len(entries), map_sqs_error(exc, queue_url))
        return 0
    for failed in resp.get("Failed", []):
        log.warning("could not delete a message (%s); it will be delivered again and be a no-op",
                    failed.get("Code"))
    return len(resp.get("Successful", []))


def run_queue(queue_url: str, *, settings: Any = None, prefix: str | None = None,
              bucket: str | None = None, stop: threading.Event | None = None,
              drain: bool = False, wait_seconds: int | None = None) -> QueueStats:
    """`shipyard propagator watch --queue URL`: consume until Ctrl-C / SIGTERM.

    The prefix defaults to `propagator.prefix` (SHIPYARD_PROPAGATOR__PREFIX), as in Lambda; the
    long-poll wait to `propagator.queue_wait_seconds` (default 20, SQS's maximum: fewest empty
    receives). The first Ctrl-C / SIGTERM stops after the current message and receive; a second
    Ctrl-C interrupts at once (the message then reappears after its visibility timeout).
    """
    from shipyard.settings import get_settings

    settings = settings or get_settings()
    extra = getattr(settings.propagator, "model_extra", None) or {}
    if prefix is None:
        prefix = configured_prefix(settings)
    if wait_seconds is None:
        wait_seconds = int(extra.get("queue_wait_seconds", 20))
    stop = stop or threading.Event()
    previous: dict[int, Any] = {}

    def _stop(signum: int, _frame: Any) -> None:
        log.info("stopping after the current message (up to %d s); Ctrl-C again to stop now",
                 wait_seconds)
        stop.set()
        signal.signal(signum, previous.get(signum, signal.SIG_DFL))

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _stop)
    log.info("consuming %s (prefix %r); Ctrl-C to stop", queue_url, prefix or "")
    cache = PropagatorCache(settings)
    try:
        return consume_queue(queue_url, cache, stop, prefix=prefix, bucket=bucket, drain=drain,
                             wait_seconds=wait_seconds)
    finally:
        cache.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def configured_prefix(settings: Any) -> str:
    section = getattr(settings, "propagator", None)
    extra = getattr(section, "model_extra", None) or {}
    return normalize_prefix(extra.get("prefix") or getattr(section, "prefix", None))
