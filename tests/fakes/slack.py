"""A fake Slack Web API: a real HTTP server on 127.0.0.1 speaking the methods shipyard uses.

Slack is the one dependency a test may fake (we cannot run it). This server is what slack_sdk's
WebClient talks to when `base_url` points at `FakeSlack.base_url`; request shapes follow
slack_sdk 3.x (slack_sdk/web/base_client.py): every call is a POST with the token in
`Authorization: Bearer ...`; chat.postMessage sends JSON, the other methods send
application/x-www-form-urlencoded; files_upload_v2 POSTs the raw bytes to the `upload_url`
files.getUploadURLExternal handed out (here: on this same server).

Methods: auth.test, users.conversations, conversations.list, chat.postMessage,
files.getUploadURLExternal, the upload URL, files.completeUploadExternal.

Failures are programmable per test:

    slack.fail("chat.postMessage", "ratelimited", status=429, retry_after=1)
    slack.fail("chat.postMessage", status=500, times=2)  # an HTML error page, as Slack's edge sends
    slack.fail("files.completeUploadExternal", "not_in_channel")
    slack.fail("upload", status=500)                       # the upload URL itself

Use it from any tool's tests:

    from tests.fakes.slack import FakeSlack, fake_slack  # noqa: F401  (the fixture)
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

TOKEN = "xoxb-test-token"


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_member: bool = True
    is_archived: bool = False

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "is_channel": not self.is_private,
                "is_group": self.is_private, "is_private": self.is_private,
                "is_member": self.is_member, "is_archived": self.is_archived}


@dataclass
class Failure:
    method: str
    error: str | None
    status: int
    times: int
    retry_after: int | None
    match: dict[str, str]


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)


class FakeSlack:
    """A Slack workspace with one bot. Start with `with FakeSlack() as slack:` or the fixture."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.channels: dict[str, Channel] = {}
        self.calls: list[Call] = []
        self.messages: list[dict[str, Any]] = []
        self.files: dict[str, dict[str, Any]] = {}
        self._failures: list[Failure] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> "FakeSlack":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                fake._handle(self)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-slack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeSlack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root(self) -> str:
        assert self._server is not None, "FakeSlack is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """What to give WebClient(base_url=...) / SHIPYARD_SLACK_BASE_URL."""
        return self.root + "/api/"

    # -- workspace state -------------------------------------------------------------------

    def add_channel(self, name: str, *, member: bool = True, private: bool = False,
                    archived: bool = False) -> str:
        """Create a channel; `member` = the bot has been invited. Returns its ID."""
        with self._lock:
            cid = ("G" if private else "C") + f"{next(self._ids):09d}"
            self.channels[cid] = Channel(cid, name, private, member, archived)
            return cid

    def channel(self, name_or_id: str) -> Channel | None:
        with self._lock:
            if name_or_id in self.channels:
                return self.channels[name_or_id]
            for c in self.channels.values():
                if c.name == name_or_id.lstrip("#"):
                    return c
        return None

    def set_member(self, name: str, member: bool) -> None:
        c = self.channel(name)
        assert c is not None, name
        c.is_member = member

    def fail(self, method: str, error: str | None = None, *, status: int = 200, times: int = 1,
             retry_after: int | None = None, **match: str) -> None:
        """The next `times` calls of `method` (whose params include `match`) answer with this
        error / HTTP status instead. method "upload" is the upload URL."""
        if status == 429 and error is None:
            error = "ratelimited"
        with self._lock:
            self._failures.append(Failure(method, error, status, times, retry_after, match))

    # -- what happened ---------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def messages_in(self, name: str) -> list[dict[str, Any]]:
        c = self.channel(name)
        return [m for m in self.messages if c is not None and m["channel"] == c.id]

    # -- HTTP ------------------------------------------------------------------------------

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urlsplit(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in req.headers.items()}
        if url.path.startswith("/upload/"):
            return self._upload(req, url.path.rsplit("/", 1)[-1], raw, headers)
        if not url.path.startswith("/api/"):
            return self._reply(req, 404, {"ok": False, "error": "unknown_method"})
        method = url.path[len("/api/"):]
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(url.query).items()}
        ctype = headers.get("content-type", "")
        if raw:
            if ctype.startswith("application/json"):
                params.update(json.loads(raw.decode("utf-8")))
            elif ctype.startswith("application/x-www-form-urlencoded"):
                params.update({k: v[-1] for k, v in parse_qs(raw.decode("utf-8")).items()})
        call = Call(method, params, headers)
        with self._lock:
            self.calls.append(call)
        status, body, extra = self._dispatch(method, params, headers)
        call.status, call.response = status, body
        self._reply(req, status, body, extra)

    def _reply(self, req: BaseHTTPRequestHandler, status: int, body: dict[str, Any],
               extra: dict[str, str] | None = None) -> None:
        if "_html" in body:
            data, ctype = body["_html"].encode("utf-8"), "text/html; charset=utf-8"
        else:
            data, ctype = json.dumps(body).encode("utf-8"), "application/json; charset=utf-8"
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(data)

    def _scripted(self, method: str, params: dict[str, Any]) -> Failure | None:
        with self._lock:
            for f in self._failures:
                if f.method == method and f.times > 0 and all(str(params.get(k)) == v for k, v in f.match.items()):
                    f.times -= 1
                    return f
        return None

    def _dispatch(self, method: str, params: dict[str, Any],
                  headers: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
        auth = headers.get("authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else params.get("token")
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token != self.token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        f = self._scripted(method, params)
        if f is not None:
            extra = {"Retry-After": str(f.retry_after)} if f.retry_after is not None else {}
            if f.error is None and f.status >= 500:
                # Slack's edge answers a 5xx with an HTML page, not JSON.
                return f.status, {"_html": f"<html><body><h1>{f.status} Server Error</h1></body></html>"}, extra
            return f.status, {"ok": False, "error": f.error or f"http_{f.status}"}, extra
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        return 200, handler(params), {}

    # -- methods ---------------------------------------------------------------------------

    def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://fake.slack.test/", "team": "Fake", "user": "jarvis",
                "team_id": "T000000001", "user_id": "U0000BOT1", "bot_id": "B000000001"}

    def _page(self, items: list[Channel], p: dict[str, Any]) -> dict[str, Any]:
        limit = int(p.get("limit") or 100)
        start = int(str(p.get("cursor") or "offset:0").split(":", 1)[1])
        page = items[start:start + limit]
        nxt = f"offset:{start + limit}" if start + limit < len(items) else ""
        return {"ok": True, "channels": [c.to_api() for c in page],
                "response_metadata": {"next_cursor": nxt}}

    def _types(self, p: dict[str, Any]) -> set[str]:
        return set(str(p.get("types") or "public_channel").split(","))

    def _visible(self, c: Channel, types: set[str], exclude_archived: bool) -> bool:
        kind = "private_channel" if c.is_private else "public_channel"
        return kind in types and not (exclude_archived and c.is_archived)

    def _m_users_conversations(self, p: dict[str, Any]) -> dict[str, Any]:
        types, excl = self._types(p), str(p.get("exclude_archived")) in ("1", "true", "True")
        with self._lock:
            mine = [c for c in self.channels.values() if c.is_member and self._visible(c, types, excl)]
        return self._page(mine, p)

    def _m_conversations_list(self, p: dict[str, Any]) -> dict[str, Any]:
        types, excl = self._types(p), str(p.get("exclude_archived")) in ("1", "true", "True")
        with self._lock:
            # A private channel is listed only to its members (groups:read).
            seen = [c for c in self.channels.values() if self._visible(c, types, excl)
                    and (c.is_member or not c.is_private)]
        return self._page(seen, p)

    def _postable(self, channel: Any) -> tuple[Channel | None, str | None]:
        c = self.channel(str(channel or ""))
        if c is None or (c.is_private and not c.is_member):
            return None, "channel_not_found"
        if c.is_archived:
            return None, "is_archived"
        if not c.is_member:
            return None, "not_in_channel"
        return c, None

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        c, err = self._postable(p.get("channel"))
        if err:
            return {"ok": False, "error": err}
        blocks = p.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if not p.get("text") and not blocks:
            return {"ok": False, "error": "no_text"}
        for b in blocks or []:
            # Block Kit limits: header 150, section 3000 (https://docs.slack.dev/reference/block-kit/blocks)
            text = (b.get("text") or {}).get("text", "")
            if (b.get("type") == "header" and len(text) > 150) or len(text) > 3000:
                return {"ok": False, "error": "invalid_blocks"}
        if len(blocks or []) > 50:
            return {"ok": False, "error": "invalid_blocks"}
        assert c is not None
        n = next(self._ids)
        ts = f"{1_700_000_000 + n}.{n:06d}"
        msg = {"channel": c.id, "ts": ts, "text": p.get("text"), "blocks": blocks,
               "thread_ts": p.get("thread_ts")}
        with self._lock:
            self.messages.append(msg)
        return {"ok": True, "channel": c.id, "ts": ts, "message": {"text": p.get("text"), "ts": ts}}

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("filename") or not str(p.get("length") or "").isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        fid = f"F{next(self._ids):09d}"
        with self._lock:
            self.files[fid] = {"id": fid, "filename": p["filename"], "length": int(p["length"]),
                               "data": None, "channel": None, "thread_ts": None, "title": None}
        return {"ok": True, "upload_url": f"{self.root}/upload/{fid}", "file_id": fid}

    def _upload(self, req: BaseHTTPRequestHandler, fid: str, raw: bytes, headers: dict[str, str]) -> None:
        call = Call("upload", {"file_id": fid, "bytes": len(raw)}, headers)
        with self._lock:
            self.calls.append(call)
        f = self._scripted("upload", {"file_id": fid})
        if f is not None:
            call.status = f.status
            if f.error is None and f.status >= 500:
                return self._reply(req, f.status, {"_html": f"<html><body>{f.status}</body></html>"})
            return self._reply(req, f.status, {"ok": False, "error": f.error or f"http_{f.status}"})
        entry = self.files.get(fid)
        if entry is None:
            return self._reply(req, 404, {"ok": False, "error": "file_not_found"})
        if len(raw) != entry["length"]:
            # Slack rejects a body whose size differs from the announced length.
            return self._reply(req, 400, {"ok": False, "error": "length_mismatch"})
        entry["data"] = raw
        data = f"OK - {len(raw)}".encode()
        req.send_response(200)
        req.send_header("Content-Type", "text/plain")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        try:
            files = json.loads(p.get("files") or "")
        except json.JSONDecodeError:
            return {"ok": False, "error": "invalid_arguments"}
        out = []
        for item in files:
            entry = self.files.get(item.get("id", ""))
            if entry is None or entry["data"] is None:
                return {"ok": False, "error": "file_not_found"}
        if p.get("channel_id"):
            c, err = self._postable(p["channel_id"])
            if err:
                return {"ok": False, "error": err}
        for item in files:
            entry = self.files[item["id"]]
            entry.update(channel=p.get("channel_id"), thread_ts=p.get("thread_ts"),
                         title=item.get("title"), comment=p.get("initial_comment"))
            out.append({"id": entry["id"], "name": entry["filename"], "title": entry["title"]})
        return {"ok": True, "files": out}


@pytest.fixture
def fake_slack():
    """A started FakeSlack (token `fakes.slack.TOKEN`), stopped after the test."""
    with FakeSlack() as slack:
        yield slack
