"""Fault injection on loopback: proxies that sit between our code and a real server.

- `TCPProxy`: forwards bytes to a real server (PostgreSQL, MariaDB, ...); `cut()` drops every
  open connection (what a client sees when the server restarts), `refuse_for(s)` refuses new ones.
- `FaultyHTTPProxy`: forwards HTTP to a real server (moto's S3); can answer 500 / 503 SlowDown or
  hang (a timeout) for the next N requests or for a while, then recovers.

Nothing here fakes a server: the data always comes from the real one behind the proxy.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class TCPProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._refuse_until = 0.0
        self._stop = threading.Event()
        self.accepted = 0
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._refuse_until:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self.accepted += 1
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)

    @property
    def open_connections(self) -> int:
        """Client connections currently piped to the server."""
        with self._lock:
            return len(self._conns) // 2

    def cut(self) -> int:
        """Drop every open connection, as a server restart does. Returns how many."""
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        return len(conns) // 2

    def refuse_for(self, seconds: float) -> None:
        """Close new connections at once for a while (the server is down), then accept again."""
        self._refuse_until = time.monotonic() + seconds

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self.cut()


class FaultyHTTPProxy:
    """A reverse proxy to `target` (http://host:port) that can fail on command."""

    def __init__(self, target: str) -> None:
        host, _, port = target.removeprefix("http://").rstrip("/").partition(":")
        self.target = (host, int(port or 80))
        self.mode = "pass"  # pass | 500 | 503 | hang
        self.remaining = 0  # failures left; 0 with mode != pass means "until until"
        self.until = 0.0
        self.hang_seconds = 30.0
        self.requests = 0
        self.failed = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _fault(self) -> str | None:
                with proxy._lock:
                    proxy.requests += 1
                    mode = proxy.mode
                    if mode == "pass":
                        return None
                    if proxy.remaining > 0:  # "the next N requests"
                        proxy.remaining -= 1
                        if proxy.remaining == 0:
                            proxy.mode = "pass"
                    elif time.monotonic() >= proxy.until:  # "for a while" is over
                        proxy.mode = "pass"
                        return None
                    proxy.failed += 1
                    return mode

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = self._fault()
                if fault == "hang":
                    time.sleep(proxy.hang_seconds)
                    self.close_connection = True
                    return
                if fault in ("500", "503"):
                    code = int(fault)
                    err = "SlowDown" if code == 503 else "InternalError"
                    payload = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{err}</Code>"
                               f"<Message>injected fault</Message></Error>").encode()
                    self.send_response(code)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(*proxy.target, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    # HEAD keeps the server's Content-Length (the object's size, no body).
                    if k.lower() in ("transfer-encoding", "connection") or (
                        k.lower() == "content-length" and self.command != "HEAD"
                    ):
                        continue
                    self.send_header(k, v)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def fail(self, mode: str, *, count: int = 0, seconds: float = 0.0) -> None:
        """Fail the next `count` requests, or every request for `seconds`, with `mode`."""
        with self._lock:
            self.mode, self.remaining = mode, count
            self.until = time.monotonic() + seconds if seconds else 0.0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
