"""AWS Lambda entry point: `shipyard.propagator.aws.handler`.

Triggers (deploy/template.yaml sets them up; docs/deploy-aws.md explains the choice):
* S3 event notification straight to the function (asynchronous invocation);
* an SQS queue of S3 notifications, of SNS notifications wrapping them, or of EventBridge
  events (event source mapping with `ReportBatchItemFailures`);
* an EventBridge rule on "Object Created" (asynchronous invocation); SNS straight to Lambda.

Every record is handled on its own (shipyard.propagator.dispatch.process_event). Retries:
* SQS batch: the response lists, in `batchItemFailures`, only the messages with a transient or
  unexpected failure; Lambda deletes the others. A bad file is terminal: it is already in
  failed/ with its error report, so retrying it could only fail again.
  https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
* direct (asynchronous) invocations: the handler raises only when a record failed transiently,
  so Lambda's async retries (2 by default) re-run the event; records that already succeeded
  are no-ops then (gone from input/, in the ledger: status "duplicate").
  https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html

The bucket comes from each record (`SHIPYARD_PROPAGATOR__BUCKET`, when set, is the only one
served); `SHIPYARD_PROPAGATOR__PREFIX` maps `s3://bucket/<prefix>` as the store when the layout
does not start at the bucket root. Secrets (warehouse URLs with
passwords, the Slack token) can live in one Secrets Manager secret named by
`SHIPYARD_LAMBDA_SECRET`: a JSON object of environment variables, read once per cold start.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from typing import Any
from urllib.parse import quote_plus

from shipyard import aws
from shipyard.errors import ConfigError, InputError, ShipyardError, TransientError
from shipyard.propagator.dispatch import (
    PropagatorCache,
    PropagatorFactory,
    RecordResult,
    configured_prefix,
    handle_message,
    message_done,
    normalize_prefix,
    record_log,
)
from shipyard.propagator.events import parse_lambda_event
from shipyard.propagator.sqs import QueueStats, run_queue
from shipyard.settings import Settings, get_settings
from shipyard.store import is_s3_url

log = logging.getLogger("shipyard.propagator.aws")

# Below this many seconds left, an SQS batch stops starting new messages and reports the rest
# as failures (retried later) rather than being cut off by the function timeout mid-load.
DEFAULT_RESERVE_SECONDS = 20.0  # propagator.lambda_reserve_seconds's default

_lock = threading.Lock()
_state: dict[str, Any] = {"settings": None, "cache": None, "secret": None}


class _Stdout(logging.Handler):
    """Writes the record's message as one line to the *current* sys.stdout (CloudWatch Logs
    keeps each line as one event; tests capture stdout)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:  # logging must never break processing
            self.handleError(record)


def _setup_logging() -> None:
    if not any(isinstance(h, _Stdout) for h in record_log.handlers):
        handler = _Stdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        record_log.addHandler(handler)
        record_log.propagate = False
    record_log.setLevel(logging.INFO)
    # Lambda's root logger is at WARNING; our own warnings and infos should reach CloudWatch.
    logging.getLogger("shipyard").setLevel(logging.INFO)


def load_secret_env(secret_id: str, *, client: Any = None) -> list[str]:
    """Copy a Secrets Manager secret (a JSON object of env vars) into os.environ.

    Variables already set in the function's configuration win, so a deploy can override one.
    Returns the names set. ConfigError when the secret is missing or not such an object;
    TransientError when Secrets Manager is busy or unreachable (shipyard.aws's mapping).
    """
    sm = client or aws.client("secretsmanager")
    hint = "check SHIPYARD_LAMBDA_SECRET and the function's secretsmanager:GetSecretValue permission"
    try:
        with aws.aws_errors(f"reading secret {secret_id!r}"):
            value = sm.get_secret_value(SecretId=secret_id).get("SecretString")
    except ShipyardError as exc:
        if exc.retryable:
            raise
        raise ConfigError(exc.message, hint=hint) from exc
    if value is None:
        raise ConfigError(f"secret {secret_id!r} has no SecretString",
                          hint="store a JSON object of environment variables")
    try:
        env = json.loads(value)
        if not isinstance(env, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise ConfigError(f"secret {secret_id!r} is not a JSON object ({exc})",
                          hint='store e.g. {"SHIPYARD_DESTINATIONS__REDSHIFT__URL": "postgresql://..."}') from exc
    names = []
    for name, val in env.items():
        if name not in os.environ:
            os.environ[name] = str(val)
            names.append(name)
    return names


def _propagators() -> tuple[PropagatorFactory, str]:
    """The process's propagator cache, rebuilt when the settings object changes."""
    with _lock:
        secret = os.environ.get("SHIPYARD_LAMBDA_SECRET")
        if secret and _state["secret"] != secret:
            names = load_secret_env(secret)
            log.info("loaded %d variable(s) from secret %s", len(names), secret)
            _state["secret"] = secret
            get_settings(fresh=True)
        settings = get_settings()
        if _state["settings"] is not settings:
            _state["settings"] = settings
            _state["cache"] = PropagatorCache(settings)
        return _state["cache"], configured_prefix(settings)


def reset() -> None:
    """Forget the cached propagators, closing their connections (tests, local runs)."""
    with _lock:
        cache = _state["cache"]
        _state.update(settings=None, cache=None, secret=None)
    if cache is not None:
        cache.close()


def _seconds_left(context: Any) -> float | None:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return getter() / 1000.0 if callable(getter) else None


def handle_event(event: Any, get_propagator: PropagatorFactory, *, prefix: str | None = None,
                 bucket: str | None = None, context: Any = None,
                 reserve_seconds: float = DEFAULT_RESERVE_SECONDS) -> dict[str, Any]:
    """The handler's logic, for any factory of propagators (a store URL -> Propagator).
    `bucket`, when given, is the only bucket served; events of others are ignored.

    Returns `{"batchItemFailures": [...]}` for SQS batches, `{"records": [...]}` otherwise.
    Raises InputError for an event of no known shape, TransientError when a directly invoked
    event had a record that should be retried.
    """
    invocation = parse_lambda_event(event)
    held: dict[str, str] = {}  # keeps each table's order within this batch (process_event)
    if invocation.kind == "sqs":
        failures: list[dict[str, str]] = []
        for message in invocation.messages:
            left = _seconds_left(context)
            if left is not None and left < reserve_seconds:
                log.warning("%.1f s left: message %s not started; it will be retried",
                            left, message.message_id)
                failures.append({"itemIdentifier": message.message_id})
                continue
            results = handle_message(message, get_propagator, prefix=prefix, bucket=bucket,
                                     held=held)
            if not message_done(message, results):
                failures.append({"itemIdentifier": message.message_id})
        return {"batchItemFailures": failures}

    results: list[RecordResult] = []
    for message in invocation.messages:
        results.extend(handle_message(message, get_propagator, prefix=prefix, bucket=bucket,
                                      held=held))
    retry = [r for r in results if r.retry]
    if retry:
        raise TransientError(
            f"{len(retry)} of {len(results)} record(s) failed and will be retried: "
            + "; ".join(f"s3://{r.bucket}/{r.key}: {r.error}" for r in retry),
            keys=[r.key for r in retry],
        )
    return {"records": [r.to_json() for r in results]}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (Handler: shipyard.propagator.aws.handler)."""
    _setup_logging()
    get_propagator, prefix = _propagators()
    section = get_settings().propagator
    # SHIPYARD_PROPAGATOR__BUCKET (the template sets it): events of any other bucket are ignored.
    return handle_event(event, get_propagator, prefix=prefix, bucket=section.bucket or None,
                        context=context, reserve_seconds=section.lambda_reserve_seconds)


def consume_queue(*, queue_url: str, bucket: str | None = None, settings: Settings | None = None,
                  stop: threading.Event | None = None, drain: bool = False,
                  wait_seconds: int | None = None) -> QueueStats:
    """`shipyard propagator watch --bucket s3://bucket[/prefix] --queue URL`: the same processing
    as the Lambda handler, as a long-running SQS consumer (see sqs.consume_queue).

    `bucket`, when given, restricts it to that bucket and prefix (events of others are ignored);
    otherwise each event's bucket is used with SHIPYARD_PROPAGATOR__PREFIX, as in Lambda.
    Returns the QueueStats when stopped (Ctrl-C, SIGTERM, or `drain` and the queue is empty).
    """
    name = prefix = None
    if bucket:
        if not is_s3_url(bucket):
            raise ConfigError(f"--queue needs an S3 bucket, not {bucket!r}",
                              hint="use --bucket s3://bucket[/prefix] with --queue, or drop --queue "
                              "to poll a local folder")
        name, _, rest = bucket[len("s3://"):].partition("/")
        prefix = normalize_prefix(rest)
    return run_queue(queue_url, settings=settings, prefix=prefix, bucket=name, stop=stop,
                     drain=drain, wait_seconds=wait_seconds)


class _LocalContext:
    """Enough of Lambda's context object for a local run: a fixed time budget."""

    def __init__(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self._deadline - time.monotonic()) * 1000)


def _set_key(event: dict[str, Any], key: str) -> None:
    encoded = quote_plus(key, safe="/")
    if isinstance(event.get("detail"), dict) and "object" in event["detail"]:
        event["detail"]["object"]["key"] = encoded
        return
    records = [r for r in event.get("Records", []) if isinstance(r, dict) and "s3" in r]
    if not records:
        raise InputError("--key works with direct S3 and EventBridge events only",
                         hint="edit the key inside the message body of SQS/SNS events")
    for record in records:
        record["s3"]["object"]["key"] = encoded


def main(argv: list[str] | None = None) -> int:
    """`python -m shipyard.propagator.aws EVENT.json [--bucket NAME]`: run the handler locally on
    an event file (AWS_ENDPOINT_URL pointing at moto or LocalStack, or real AWS credentials).
    Prints the handler's response; exit 3 when it raised a retryable error, 2 for other errors."""
    parser = argparse.ArgumentParser(prog="python -m shipyard.propagator.aws",
                                     description=main.__doc__)
    parser.add_argument("event", help="a Lambda event JSON file (e.g. tests/propagator/events/s3_put.json)")
    parser.add_argument("--bucket", help="replace the bucket name amzn-s3-demo-bucket in the event")
    parser.add_argument("--key", help="set the object key of a direct S3 or EventBridge event "
                        "(plain text; it is URL-encoded as S3 does)")
    parser.add_argument("--timeout", type=float, default=900.0, help="simulated function timeout (s)")
    args = parser.parse_args(argv)
    with open(args.event, encoding="utf-8") as f:
        text = f.read()
    if args.bucket:
        text = text.replace("amzn-s3-demo-bucket", args.bucket)
    try:
        event = json.loads(text)
        if args.key:
            _set_key(event, args.key)
        response = handler(event, _LocalContext(args.timeout))
    except ShipyardError as exc:
        print(json.dumps({"errorType": type(exc).__name__, **exc.to_dict()}), file=sys.stderr)
        return exc.exit_code
    print(json.dumps(response, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
