"""Real servers on 127.0.0.1 for pulse's tests, and a helper that runs the monitor service.

- `backend`: an HTTP server that can be switched ok / failing (500) / slow, or stopped (down)
  and started again on the same port.
- `tcp_listener`: a TCP server that answers PING with +PONG; can be stopped.
- `run_pulse`: starts PulseService in its own thread and event loop on a manual clock
  (tests/pulse/clock.py), waits until it is ready, and stops it at the end of the test.
"""

from __future__ import annotations

import asyncio
import json
import socket
import socketserver
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from shipyard.pulse.service import PulseService
from shipyard.pulse.web import serve
from shipyard.settings import get_settings
from tests.helpers import free_port, read_outbox, wait_for
from tests.pulse.clock import ManualClock


class Backend:
    def __init__(self) -> None:
        self.port = free_port()
        self.mode = "ok"
        self.delay = 0.0
        self.on_request = None  # called in the server thread for each GET (e.g. to move a clock)
        self.hits = 0
        self._server: ThreadingHTTPServer | None = None
        self._conns: set = set()
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers + body cost a 40 ms delayed ACK

            def log_message(self, *a):  # keep test output quiet
                pass

            def setup(self):
                super().setup()
                backend._conns.add(self.connection)

            def finish(self):
                backend._conns.discard(self.connection)
                super().finish()

            def do_POST(self):
                # Echo what the check sent, so tests can see method, headers and body.
                n = int(self.headers.get("Content-Length") or 0)
                body = json.dumps({"method": "POST", "body": self.rfile.read(n).decode(),
                                   "token": self.headers.get("X-Token"), "db": "ok",
                                   "type": self.headers.get("Content-Type")}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Service", "billing")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                backend.hits += 1
                if backend.on_request is not None:
                    backend.on_request()
                if backend.mode == "slow":
                    time.sleep(backend.delay)
                if backend.mode == "fail":
                    body, code = b'{"db": "down"}', 500
                else:
                    body, code = json.dumps({"db": "ok", "path": self.path}).encode(), 200
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass  # a client that timed out and hung up is expected here

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        """Down: nothing listens on the port any more (connections are refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        # Kept-alive connections too: a dead service does not answer on old connections.
        for c in list(self._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def backend():
    b = Backend()
    yield b
    b.stop()


class TcpListener:
    def __init__(self) -> None:
        self.port = free_port()

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(2)
                try:
                    data = self.request.recv(1024)
                    if b"PING" in data:
                        self.request.sendall(b"+PONG\r\n")
                except OSError:
                    pass

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def tcp_listener():
    t = TcpListener()
    yield t
    t.stop()


class Running:
    def __init__(self, svc, thread, loop, clock):
        self.svc, self.thread, self.loop, self.clock = svc, thread, loop, clock

    def settle(self, timeout: float = 10.0) -> None:
        """Wait (on the wall clock, briefly) until the service has done everything that is due
        at the manual clock's time: its loop tasks sleep again and no check is in flight."""
        tasks = 4 if self.svc.sync_from else 3  # scheduler, writer, watcher (+ syncer)
        wait_for(lambda: self.clock.settled(tasks) and not self.svc.running,
                 timeout, 0.005, "the service to catch up with the manual clock")

    def flush(self) -> None:
        """Let the writer store every result so far (it runs every pulse.flush_interval)."""
        self.settle()
        while self.svc.recorder.pending:
            self.step(self.svc.settings.pulse.flush_interval)

    def step(self, seconds: float, by: float = 0.5) -> None:
        """Move the manual clock `seconds` forward, stopping at every deadline a task sleeps
        until (so each wakes at its exact time, as on the wall clock), and at least every `by`
        seconds, letting the service run everything due at each stop."""
        end = self.clock.now() + seconds
        while self.clock.now() < end - 1e-9:
            nxt = self.clock.next_deadline()
            stop = min(end, self.clock.now() + by, nxt if nxt is not None else end)
            self.clock.advance_to(stop)
            self.settle()

    def until(self, pred, seconds: float = 60.0, by: float = 0.5, what: str = "condition"):
        """Step the manual clock until `pred()` holds (at most `seconds` of manual time)."""
        done = 0.0
        while not (v := pred()):
            assert done < seconds, f"{what}: not reached within {seconds}s of manual time"
            self.step(by, by)
            done += by
        return v

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.svc.stop)
            self.thread.join(20)
        assert not self.thread.is_alive(), "pulse service did not stop"


def pulse_settings(**pulse):
    """Default settings with pulse options overridden (e.g. min_interval=0.1)."""
    s = get_settings()
    return s.model_copy(update={"pulse": s.pulse.model_copy(update=pulse)})


@pytest.fixture
def run_pulse():
    """run_pulse(config_dir, port=None, clock=ManualClock(), **PulseService kwargs) -> Running.

    By default the service runs on a manual clock that the test moves with `run.step()` /
    `run.until()`; pass clock=SystemClock() for wall-clock time."""
    started: list[Running] = []

    def start(config_dir: Path, port: int | None = None, **kw) -> Running:
        clock = kw.setdefault("clock", ManualClock())
        svc = PulseService(config_dir, **kw)
        ready = threading.Event()
        errors: list[BaseException] = []
        holder: dict = {}

        def main() -> None:
            loop = asyncio.new_event_loop()
            holder["loop"] = loop
            try:
                loop.run_until_complete(svc.run(port=port, ready=lambda s: ready.set(), serve=serve))
            except BaseException as exc:  # surfaced to the test below
                errors.append(exc)
                ready.set()
            finally:
                loop.close()

        t = threading.Thread(target=main, daemon=True)
        t.start()
        assert ready.wait(20), "pulse service did not start"
        if errors:
            raise errors[0]
        r = Running(svc, t, holder["loop"], clock)
        started.append(r)
        if isinstance(clock, ManualClock):
            r.settle()
        return r

    yield start
    for r in started:
        r.stop()


def everything_shown(run: Running, logs: str, notices: int = 1) -> str:
    """All a running service lets out, as one string: every page and API answer (badges too),
    /metrics, the notices, the given log text and every history table."""
    base = f"http://127.0.0.1:{run.svc.port}"
    paths = ["/", "/api/monitors", "/api/incidents", "/metrics", "/api/health"]
    for mid in run.svc.monitors:
        paths += [f"/api/monitors/{mid}", f"/badge/{mid}/status.svg", f"/badge/{mid}/response-time.svg"]
    shown = [httpx.get(base + p).text for p in paths]
    shown.append(str(wait_for(lambda: x if len(x := read_outbox()) >= notices else None, what="the notices")))
    shown.append(logs)
    con = sqlite3.connect(Path.cwd() / "pulse.sqlite3")
    tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    shown += [str(con.execute(f"SELECT * FROM {t}").fetchall()) for t in tables]
    con.close()
    return "\n".join(shown)


def write_monitors(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside and rename, like an editor or the sync: the watcher never reads half a file.
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
