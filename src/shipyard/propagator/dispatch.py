"""What to do with one event: route it, run it through a propagator, say whether to retry.

`route_event` decides whether an event is ours and which store key it is; `process_event` runs
one through a propagator and never raises; `handle_message` does a whole message. The Lambda
handler (aws.py) and the SQS consumer (sqs.py) are thin clients of these.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

from shipyard.errors import ShipyardError, TransientError
from shipyard.notify import Notifier
from shipyard.propagator.events import Message, ObjectEvent
from shipyard.propagator.layout import own_folder, table_of
from shipyard.propagator.runner import Propagator
from shipyard.settings import Settings

log = logging.getLogger("shipyard.propagator.events")
# One JSON line per record handled; the Lambda handler sends this logger to stdout as-is.
record_log = logging.getLogger("shipyard.propagator.records")


class PropagatorLike(Protocol):
    def process_in_order(self, key: str, *, etag: str | None = None) -> Any: ...


# store URL (s3://bucket[/prefix]) -> a propagator for that store
PropagatorFactory = Callable[[str], PropagatorLike]


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


def normalize_prefix(prefix: str | None) -> str:
    return (prefix or "").strip("/")


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


def _outcome_field(outcome: Any, name: str) -> Any:
    value = getattr(outcome, name, None)
    if isinstance(value, dict):  # the runner's error report: its one-line "what" is enough here
        return value.get("what") or json.dumps(value, default=str)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


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
            outcome = propagator.process_in_order(route.key, etag=event.etag)
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

    def __init__(self, settings: Settings | None = None, notifier: Notifier | None = None,
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
                build = self._build or Propagator.from_settings
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


def configured_prefix(settings: Settings) -> str:
    """`propagator.prefix` (SHIPYARD_PROPAGATOR__PREFIX), without its slashes."""
    return normalize_prefix(settings.propagator.prefix)
