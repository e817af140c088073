"""Helpers every tool's tests share (one copy each): the outbox reader, free ports, polling, and
real servers on loopback (a uvicorn app, a plain http.server handler).

    from tests.helpers import read_outbox, free_port, wait_for, serve_app, serve_http

The pytest fixtures built on them (`uvicorn_server`, `http_server`) live in
tests/helpers/fixtures.py and are loaded for every test by tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from shipyard.cli import main

T = TypeVar("T")


def read_outbox(path: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The notices in an outbox file, one dict per JSON line ([] when there is none).

    Default: $SHIPYARD_OUTBOX (the autouse `_isolate` fixture points it into the test's
    tmp_path), else ./outbox.jsonl."""
    p = Path(path if path is not None else os.environ.get("SHIPYARD_OUTBOX", "outbox.jsonl"))
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(host: str, port: int, timeout: float = 2) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05,
             what: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy (returned); AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@contextmanager
def serve_app(app: Any, *, port: int | None = None, timeout: float = 10) -> Iterator[str]:
    """An ASGI app on a real uvicorn server in a thread; yields its base URL, stops it on exit."""
    import uvicorn  # only the tests that serve an app pay for it

    config = uvicorn.Config(app, host="127.0.0.1", port=port or free_port(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), timeout, 0.02, "uvicorn to start")
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class HttpServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that is quiet about clients hanging up; `.url` is its base URL."""

    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is expected in these tests

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler], *, port: int = 0) -> Iterator[HttpServer]:
    """An http.server handler class on 127.0.0.1 in a thread; yields the server (`.url`)."""
    server = HttpServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


__all__ = ["read_outbox", "free_port", "answers", "wait_for", "serve_app", "serve_http", "HttpServer"]


def run_cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    """Run `shipyard ARGS...` in-process: (exit code, stdout, stderr with white space folded —
    rich wraps at the terminal width, so tests compare text, not line breaks)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())
