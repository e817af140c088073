"""The HTTP endpoint for callers outside AWS: `shipyard jarvis serve`.

    POST /notify   the payload as JSON; header X-Shipyard-Secret: <settings.jarvis.http_secret>
    GET  /healthz  liveness, and whether Slack or the outbox is in use

Responses carry the same structured result as the Lambda handler. Status codes: 200 delivered,
400 bad payload (not JSON, nested too deep, wrong fields, attachment not allowed), 401 wrong
secret, 404 channel/attachment not found (or bot not invited), 413 body too large, 500
misconfigured, 502 Slack refused, 503 retry later.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from shipyard.errors import ConfigError
from shipyard.jarvis.service import Jarvis, get_jarvis
from shipyard.settings import Settings, get_settings

log = logging.getLogger("shipyard.jarvis")

SECRET_HEADER = "X-Shipyard-Secret"
# The body limit and the JSON depth limit are settings (jarvis.max_body_bytes, default 1,000,000:
# a message is at most 40,000 characters, up to 4 bytes each in UTF-8, escaped in JSON;
# jarvis.max_json_depth, default 32). Both are answered with the structured errors below.
_STATUS_BY_ERROR = {"InputError": 400, "NotFoundError": 404, "ConfigError": 500, "TransientError": 503}


def _status(result: dict[str, Any]) -> int:
    if result.get("ok"):
        return 200
    code = result.get("error")
    if code in ("invalid_payload", "attachment_too_large", "attachment_not_allowed", "is_archived"):
        return 400
    if code in ("not_in_channel", "channel_not_found", "attachment_not_found"):
        return 404
    if code in ("not_configured", "invalid_auth", "not_authed", "token_revoked", "missing_scope"):
        return 500
    if result.get("retryable"):
        return 503
    return _STATUS_BY_ERROR.get(str(code), 502)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, read chunk by chunk and given up on (None) as soon as it passes `limit`: a huge
    body is never buffered (a declared Content-Length over the limit is refused unread)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: Settings | None = None, *, jarvis: Jarvis | None = None) -> FastAPI:
    if settings is None:
        settings = get_settings()
    secret = settings.jarvis.http_secret
    if not secret:
        raise ConfigError("the HTTP endpoint needs a shared secret",
                          hint="set SHIPYARD_JARVIS__HTTP_SECRET (or [jarvis] http_secret in shipyard.toml); "
                               "callers send it in the X-Shipyard-Secret header")
    jarvis = jarvis or get_jarvis(settings)
    max_body = settings.jarvis.max_body_bytes
    app = FastAPI(title="jarvis", description="Slack notifications (docs/jarvis.md)")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "delivery": "slack" if jarvis.configured else "outbox",
                "error_channel": jarvis.error_channel}

    @app.post("/notify")
    async def notify_endpoint(request: Request) -> JSONResponse:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("jarvis: /notify refused from %s: wrong or missing %s",
                        request.client.host if request.client else "?", SECRET_HEADER)
            return JSONResponse({"ok": False, "error": "unauthorized",
                                 "hint": f"send the shared secret in the {SECRET_HEADER} header"},
                                status_code=401)
        raw = await _read_body(request, max_body)
        if raw is None:
            return JSONResponse({"ok": False, "error": "payload_too_large",
                                 "hint": f"a payload is at most {max_body:,} bytes; attach big content "
                                         "as a file (attachment: bucket/key)"}, status_code=413,
                                headers={"Connection": "close"})
        # The raw body goes to Jarvis as is: a body that is not JSON is a payload error that
        # is reported to the error channel like any other. slack_sdk blocks: run it in the
        # thread pool so one slow Slack call does not stall the event loop.
        try:
            result = await run_in_threadpool(jarvis.deliver, raw)
        except asyncio.CancelledError:  # SIGTERM while Slack is slow: the caller retries elsewhere
            return JSONResponse({"ok": False, "error": "shutting_down", "retryable": True,
                                 "hint": "the server is stopping; send again"}, status_code=503,
                                headers={"Connection": "close"})
        return JSONResponse(result, status_code=_status(result))

    return app


__all__ = ["create_app", "SECRET_HEADER"]
