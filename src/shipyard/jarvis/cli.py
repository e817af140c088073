"""`shipyard jarvis ...`: a thin client of shipyard.jarvis's library API."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import typer

from shipyard.console import console, err_console, escape, print_error, print_table
from shipyard.errors import InputError, ShipyardError
from shipyard.jarvis import get_jarvis
from shipyard.jarvis.service import failure_dict
from shipyard.jarvis.slack import SlackSender
from shipyard.settings import get_settings

app = typer.Typer(
    help="jarvis: Slack notifications (send, serve the HTTP endpoint, list the bot's channels).",
    no_args_is_help=True,
)

_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def attachment_arg(value: str) -> dict[str, str]:
    """--attach: a local file, s3://bucket/key, or bucket/key (an S3 bucket, as the blog's callers)."""
    if value.startswith("s3://"):
        bucket, _, key = value[len("s3://"):].partition("/")
        if not bucket or not key:
            raise InputError(f"--attach {value!r} names no object", hint="use s3://bucket/path/to/file")
        return {"bucket": f"s3://{bucket}", "key": key}
    path = Path(value).expanduser()
    if path.is_file():
        return {"bucket": str(path.resolve().parent), "key": path.name}
    if path.is_dir():
        raise InputError(f"--attach {value!r} is a folder", hint="attach one file")
    first, _, rest = value.partition("/")
    if rest and _S3_BUCKET.match(first) and not value.startswith((".", "~")):
        return {"bucket": first, "key": rest}
    raise InputError(f"--attach {value!r}: no such file",
                     hint="give an existing file, s3://bucket/key, or bucket/key for an S3 bucket")


def _read_payload(source: str) -> Any:
    if source == "-":
        return sys.stdin.read()
    path = Path(source).expanduser()
    if not path.is_file():
        raise InputError(f"payload file {source!r} not found", hint="give a JSON file, or - for stdin")
    return path.read_bytes()


def _fail(exc: ShipyardError, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(failure_dict(exc), ensure_ascii=False))
    print_error(exc)
    where = exc.details.get("reported_to")
    if where == "error_channel":
        err_console.print(f"reported to #{get_settings().jarvis.error_channel}", style="dim")
    elif where == "outbox":
        err_console.print(f"report written to {get_settings().outbox}", style="dim")
    raise typer.Exit(exc.exit_code)


@app.command()
def send(
    channel: Optional[str] = typer.Option(None, "--channel", "-c", help="Slack channel name (or ID)."),
    message: Optional[str] = typer.Option(
        None, "--message", "-m",
        help="The message (Slack mrkdwn; mentions like <!channel>, <!here>, <@U123ABC> pass through). "
             "'-' reads it from stdin."),
    heading: Optional[str] = typer.Option(None, "--heading", "-H", help="Optional heading."),
    attach: Optional[str] = typer.Option(
        None, "--attach", "-a", help="A file to attach: a local path, s3://bucket/key, or bucket/key."),
    payload: Optional[str] = typer.Option(
        None, "--payload", "-p", help="Send a whole JSON payload from FILE, or '-' for stdin."),
    as_json: bool = typer.Option(False, "--json", help="Print the structured result as JSON."),
) -> None:
    """Send one notification to Slack (or to the outbox when SLACK_BOT_TOKEN is not set).

    Exit status: 0 delivered, 2 failed (fix the input or config), 3 failed but worth a retry.
    """
    with _quiet_library_warnings():
        _send(channel, message, heading, attach, payload, as_json)


@contextmanager
def _quiet_library_warnings() -> Iterator[None]:
    """The CLI prints the error and its fix itself; the library's warning would repeat it."""
    log = logging.getLogger("shipyard.jarvis")
    old = log.level
    if logging.getLogger().level > logging.DEBUG:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(old)


def _send(channel: Optional[str], message: Optional[str], heading: Optional[str], attach: Optional[str],
          payload: Optional[str], as_json: bool) -> None:
    try:
        if payload is not None:
            if any(v is not None for v in (channel, message, heading, attach)):
                raise InputError("--payload cannot be combined with --channel/--message/--heading/--attach",
                                 hint="put everything in the payload, or use the options alone")
            data: Any = _read_payload(payload)
        else:
            if not channel or message is None:
                raise InputError("--channel and --message are required (or --payload FILE|-)",
                                 hint='shipyard jarvis send -c data-team -m "load finished"')
            if message == "-":
                message = sys.stdin.read()
            data = {"slack_channel": channel, "message": message}
            if heading:
                data["heading"] = heading
            if attach:
                data["attachment"] = attachment_arg(attach)
        # The CLI user's own --attach file is allowed (its folder); payloads use the configured roots.
        roots = [data["attachment"]["bucket"]] if attach and not data["attachment"]["bucket"].startswith("s3://") \
            else []
        jarvis = get_jarvis()
        if err_console.is_terminal and jarvis.configured:
            # an attachment can take a while (download from S3, upload to Slack)
            with err_console.status("sending to Slack…"):
                result = jarvis.send(data, local_roots=roots)
        else:
            result = jarvis.send(data, local_roots=roots)
    except ShipyardError as exc:
        _fail(exc, as_json)
        return
    if as_json:
        console.print_json(json.dumps(result.to_dict(), ensure_ascii=False))
    elif result.outbox:
        err_console.print(f"SLACK_BOT_TOKEN is not set: the notification for #{escape(str(result.channel))} was "
                          f"written to {escape(str(result.outbox))} (set SLACK_BOT_TOKEN to send it to Slack)",
                          highlight=False)
    else:
        extra = f", file {result.file_id}" if result.file_id else ""
        console.print(f"[green]sent[/] to #{escape(str(result.channel))} ({result.channel_id}, ts {result.ts}{extra})",
                      highlight=False)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8087, help="Port to listen on."),
) -> None:
    """Serve POST /notify (the same JSON payload; header X-Shipyard-Secret) and GET /healthz."""
    # lazy: uvicorn and FastAPI cost ~0.3 s of start-up that only `serve` needs
    import uvicorn

    from shipyard.jarvis.http import create_app  # lazy, as above (FastAPI)

    try:
        api = create_app()
    except ShipyardError as exc:
        _fail(exc, False)
        return
    err_console.print(f"jarvis listening on http://{host}:{port}  (POST /notify, GET /healthz)",
                      highlight=False)
    # SIGTERM / Ctrl-C: requests in flight get 3 s to finish, then the server stops anyway (a
    # Slack call stuck on its 30 s timeout must not hold a deploy or a shutdown).
    uvicorn.run(api, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)


@app.command()
def channels() -> None:
    """List the channels the bot is a member of (where it can post)."""
    try:
        sender = SlackSender.from_settings(get_settings())
        rows = sorted(sender.member_channels(), key=lambda c: c.get("name", ""))
    except ShipyardError as exc:
        _fail(exc, False)
        return
    print_table(f"channels the bot is in ({len(rows)})", ["name", "id", "private"],
                [(f"#{c.get('name')}", c.get("id"), "yes" if c.get("is_private") else "") for c in rows])
