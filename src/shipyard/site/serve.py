"""`shipyard site serve`: a site on localhost with the headers it will have (or has) in S3.

Sources: a built folder (headers from the rules, as `deploy` would set them), a deployed folder
target (headers from its sidecars) or `s3://bucket[/prefix]` (S3's own headers, streamed).
URLs resolve the way CloudFront + S3 sites are usually set up: `/dir/` is `dir/index.html`,
`/dir` redirects to `/dir/`, a missing page is `404.html` with status 404 when there is one.
Release manifests (`.shipyard/`) are never served; paths never leave the root.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

from shipyard.errors import ConfigError, InputError
from shipyard.settings import SiteSettings
from shipyard.site.model import RESERVED_PREFIXES, headers_for, validate_key
from shipyard.site.targets import FolderTarget, Served, open_target
from shipyard.site.targets.local import META, file_chunks

Lookup = Callable[[str], "Served | None"]


class DirSource:
    """A built site folder, served as `deploy` would publish it (uncompressed)."""

    def __init__(self, root: str | os.PathLike[str], settings: SiteSettings) -> None:
        self.root = Path(root).resolve()
        self.settings = settings

    def get(self, key: str) -> Served | None:
        path = self.root / key
        try:
            st = os.stat(path)  # follows links; the resolve below keeps them inside the root
        except OSError:
            return None
        real = path.resolve()
        if self.root not in real.parents or not stat.S_ISREG(st.st_mode):
            return None  # outside the root, a folder, a FIFO or a device: never read
        return Served(headers_for(key, self.settings), file_chunks(real), st.st_size)


def open_source(where: str, settings: SiteSettings) -> Lookup:
    if where.startswith("s3://"):
        target = open_target(where, settings)
        target.check()
        return target.get
    if not Path(where).is_dir():
        raise InputError(f"nothing to serve at {where!r}",
                         hint="pass a built site folder, a folder deployed to, or s3://bucket[/prefix]")
    if (Path(where) / META).is_dir():
        return FolderTarget(where).get
    return DirSource(where, settings).get


def resolve(path: str, lookup: Lookup) -> tuple[int, Served | None, str | None]:
    """(status, object, redirect location) for a URL path."""
    key = unquote(urlsplit(path).path).lstrip("/")
    if key == "" or key.endswith("/"):
        key += "index.html"
    try:
        validate_key(key)
    except InputError:
        return 400, None, None
    if not key.startswith(RESERVED_PREFIXES):
        found = lookup(key)
        if found is not None:
            return 200, found, None
        if lookup(key + "/index.html") is not None:
            return 301, None, "/" + key + "/"
    missing = lookup("404.html")
    return 404, missing, None


def make_handler(lookup: Lookup) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "shipyard-site"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:  # quiet: one line per request otherwise
            pass

        def _answer(self, with_body: bool) -> None:
            status, obj, location = resolve(self.path, lookup)
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            if obj is None:
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                body = {301: b"moved\n", 400: b"bad path\n"}.get(status, b"not found\n")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)
                return
            for name, value in obj.headers.as_dict().items():
                self.send_header(name, value)
            self.send_header("X-Content-Type-Options", "nosniff")
            if obj.size is not None:
                self.send_header("Content-Length", str(obj.size))
            self.end_headers()
            if with_body:
                for chunk in obj.chunks:
                    self.wfile.write(chunk)

        def do_GET(self) -> None:
            self._answer(True)

        def do_HEAD(self) -> None:
            self._answer(False)

    return Handler


def make_server(where: str, settings: SiteSettings, *, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    lookup = open_source(where, settings)
    try:
        server = ThreadingHTTPServer((host, port), make_handler(lookup))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or type(exc).__name__})",
                          hint="pick another --port (0 takes any free one), or stop what uses it") from None
    server.daemon_threads = True
    return server


def serve_forever(server: ThreadingHTTPServer) -> None:
    """Until Ctrl-C or SIGTERM (a service manager's stop always stops it)."""
    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
