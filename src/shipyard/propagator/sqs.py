"""The SQS consumer: `shipyard propagator watch --queue URL` (the Lambda handler's twin).

Each message's records are processed independently (dispatch.py). A message is deleted when
every record ended; one with a transient failure, or a body we cannot read, is left alone: it
becomes visible again when its visibility timeout expires, and lands in the queue's dead-letter
queue after maxReceiveCount receives. Clients and error mapping: shipyard.aws.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from shipyard import aws
from shipyard.errors import ConfigError, NotFoundError, ShipyardError
from shipyard.propagator.dispatch import (
    PropagatorCache,
    PropagatorFactory,
    RecordResult,
    configured_prefix,
    handle_message,
    message_done,
)
from shipyard.propagator.events import message_from_sqs
from shipyard.retry import Backoff
from shipyard.settings import Settings, get_settings

log = logging.getLogger("shipyard.propagator.events")

_SQS_REGION = re.compile(r"sqs[.-]([a-z0-9-]+)\.amazonaws\.com")


def sqs_client(queue_url: str) -> Any:
    """An SQS client; the region comes from the queue URL when it names one (AWS's queue URLs
    do: https://sqs.<region>.amazonaws.com/<account>/<name>), else from settings."""
    m = _SQS_REGION.search(queue_url)
    return aws.client("sqs", region=m.group(1) if m else None)


def sqs_error(exc: BaseException, queue_url: str) -> ShipyardError:
    """shipyard.aws's mapping, with what to fix when the queue itself is wrong."""
    err = aws.map_error(exc, f"SQS queue {queue_url}")
    if isinstance(err, NotFoundError):
        return ConfigError(f"SQS queue {queue_url} does not exist",
                           hint="check --queue (the full queue URL, as `aws sqs get-queue-url` prints it)")
    return err


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

    `drain=True` returns after the first empty receive (cron jobs, tests). `prefix` / `bucket`
    restrict what is served, as in `dispatch.route_event`. Raises a terminal ShipyardError
    (ConfigError for a missing queue) when the queue cannot be used at all; rides out
    transient SQS errors.
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
            err = sqs_error(exc, queue_url)
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
        log.warning("could not delete %d message(s): %s", len(entries), sqs_error(exc, queue_url))
        return 0
    for failed in resp.get("Failed", []):
        log.warning("could not delete a message (%s); it will be delivered again and be a no-op",
                    failed.get("Code"))
    return len(resp.get("Successful", []))


def run_queue(queue_url: str, *, settings: Settings | None = None, prefix: str | None = None,
              bucket: str | None = None, stop: threading.Event | None = None,
              drain: bool = False, wait_seconds: int | None = None) -> QueueStats:
    """`shipyard propagator watch --queue URL`: consume until Ctrl-C / SIGTERM.

    The prefix defaults to `propagator.prefix` (SHIPYARD_PROPAGATOR__PREFIX), as in Lambda; the
    long-poll wait to `propagator.queue_wait_seconds`. The first Ctrl-C / SIGTERM stops after
    the current message and receive; a second Ctrl-C interrupts at once (the message then
    reappears after its visibility timeout).
    """
    settings = settings or get_settings()
    if prefix is None:
        prefix = configured_prefix(settings)
    if wait_seconds is None:
        wait_seconds = settings.propagator.queue_wait_seconds
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
