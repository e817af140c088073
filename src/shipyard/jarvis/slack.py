"""The Slack side: slack_sdk's WebClient, channel lookup, posting, uploading, error mapping.

Retries (https://docs.slack.dev/tools/python-slack-sdk/web#retryhandler): slack_sdk's default
connection-error handler, its RateLimitErrorRetryHandler (sleeps for Retry-After, as Slack asks:
https://docs.slack.dev/apis/web-api/rate-limits) and a bounded server-error handler. slack_sdk
counts attempts per request across all handlers, so the total number of retries of one call is
at most max(rate_limit_retries, server_error_retries).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Iterator
from urllib.error import HTTPError, URLError

from shipyard.errors import ConfigError, InputError, NotFoundError, ShipyardError, TransientError
from shipyard.jarvis.payload import CHANNEL_ID
from shipyard.settings import Settings

log = logging.getLogger("shipyard.jarvis")

_AUTH_ERRORS = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
                "no_permission", "org_login_required", "ekm_access_denied"}
_INPUT_ERRORS = {"msg_too_long", "invalid_blocks", "invalid_blocks_format", "too_many_attachments",
                 "no_text", "invalid_arguments", "invalid_attachments", "file_uploads_disabled",
                 "file_upload_size_restricted", "invalid_thread_ts"}


def invite_hint(channel: str, bot_name: str = "jarvis") -> str:
    return (f"invite the bot: in Slack open #{channel} and type `/invite @{bot_name}` "
            f"(or channel details > Integrations > Add apps)")


def not_found_hint(channel: str, bot_name: str = "jarvis") -> str:
    return (f"check the channel name (Slack names are lowercase, without '#'); if #{channel} is private, "
            f"the bot sees it only once invited: open it and type `/invite @{bot_name}`")


def _doc_method(method: str) -> str:
    # files_upload_v2 is slack_sdk's name for three calls; its errors come from the last one.
    return "files.completeUploadExternal" if method == "files_upload_v2" else method


def map_slack_error(exc: BaseException, *, channel: str | None = None, method: str = "",
                    bot_name: str = "jarvis") -> ShipyardError:
    """Translate slack_sdk / urllib exceptions into our terminal and retryable errors, by code."""
    # lazy: slack_sdk is loaded only when Slack is used (start-up cost of every CLI otherwise)
    from slack_sdk.errors import SlackApiError, SlackRequestError

    where = f"#{channel}" if channel else "Slack"
    if isinstance(exc, ShipyardError):
        return exc
    if isinstance(exc, SlackApiError):
        resp = exc.response
        status = getattr(resp, "status_code", 200) or 200
        data = resp.data if isinstance(getattr(resp, "data", None), dict) else {}
        code = str(data.get("error") or f"http_{status}")
        if status >= 500 or " " in code:
            # A 5xx usually comes from Slack's edge as HTML; slack_sdk then puts a sentence in
            # "error" ("Received a response in a non-JSON format: ..."). The status is the code.
            code = f"http_{status}"
        details = {"code": code, "channel": channel, "slack_method": method}
        if code == "not_in_channel":
            return NotFoundError(f"the bot is not a member of {where}",
                                 hint=invite_hint(channel or "the-channel", bot_name), **details)
        if code == "channel_not_found":
            return NotFoundError(f"Slack has no channel {where} that the bot can see",
                                 hint=not_found_hint(channel or "the-channel", bot_name), **details)
        if code == "is_archived":
            return InputError(f"{where} is archived", hint="unarchive it or send to another channel",
                              **details)
        if code in _AUTH_ERRORS:
            return ConfigError(
                f"Slack refused the bot token ({code})",
                hint="set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-...) from "
                     "https://api.slack.com/apps > your app > OAuth & Permissions; reinstall the app "
                     "if the token was revoked", **details)
        if code == "missing_scope":
            needed = data.get("needed") or "the missing scope"
            return ConfigError(
                f"the bot token lacks the scope {needed} ({method})",
                hint=f"add {needed} under OAuth & Permissions > Bot Token Scopes, reinstall the app "
                     "and update SLACK_BOT_TOKEN", **details)
        if code == "ratelimited" or status == 429:
            details["code"] = "ratelimited"
            return TransientError(f"Slack rate-limited {method} and the retries ran out",
                                  hint="send fewer notifications per minute, or retry later", **details)
        if status >= 500:
            return TransientError(f"Slack answered HTTP {status} to {method} after retries",
                                  hint="Slack is having trouble (https://slack-status.com); retry later",
                                  **details)
        if code in _INPUT_ERRORS:
            return InputError(f"Slack rejected the message for {where}: {code}",
                              hint="see https://docs.slack.dev/reference/methods/" + _doc_method(method), **details)
        return ShipyardError(f"Slack answered {code} to {method} for {where}",
                             hint="see https://docs.slack.dev/reference/methods/" + _doc_method(method), **details)
    if isinstance(exc, HTTPError):  # the upload URL (files_upload_v2 step 2) answers outside the API
        details = {"code": f"http_{exc.code}", "channel": channel, "slack_method": method}
        if exc.code >= 500 or exc.code == 429:
            return TransientError(f"Slack answered HTTP {exc.code} to {method}", hint="retry later", **details)
        return ShipyardError(f"Slack answered HTTP {exc.code} to {method}",
                             hint="see https://docs.slack.dev/messaging/working-with-files", **details)
    if isinstance(exc, (URLError, ConnectionError, TimeoutError, OSError)):
        return TransientError(f"cannot reach Slack ({type(exc).__name__}: {exc})",
                              hint="check the network and SHIPYARD_SLACK_BASE_URL; retry later",
                              code="slack_unreachable", channel=channel, slack_method=method)
    if isinstance(exc, SlackRequestError):
        return TransientError(f"Slack request failed: {exc}", hint="retry later",
                              code="slack_request_failed", channel=channel, slack_method=method)
    return ShipyardError(f"unexpected {type(exc).__name__} calling Slack {method}: {exc}",
                         hint="this is a bug in jarvis; run with --debug", code="internal_error",
                         channel=channel)


def make_client(token: str, base_url: str, *, timeout: int = 30, rate_limit_retries: int = 3,
                server_error_retries: int = 2, retry_backoff: float = 0.5) -> Any:
    # lazy: slack_sdk is loaded only when Slack is used (start-up cost of every CLI otherwise)
    from slack_sdk import WebClient
    from slack_sdk.http_retry import (  # lazy, as above
        BackoffRetryIntervalCalculator,
        ConnectionErrorRetryHandler,
        Jitter,
        RateLimitErrorRetryHandler,
    )
    from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler  # lazy, as above

    class _ServerErrors(ServerErrorRetryHandler):
        # slack_sdk's handler retries 500 and 503 only; a 502/504 from Slack's edge is as
        # transient.
        def _can_retry(self, *, state, request, response=None, error=None) -> bool:  # type: ignore[override]
            return response is not None and response.status_code >= 500

    class _Jitter(Jitter):
        # slack_sdk's RandomJitter adds up to a whole second to every wait; scale it with the
        # backoff instead so the delay stays configurable (tests use 10 ms).
        def recalculate(self, duration: float) -> float:
            return duration + random.uniform(0, retry_backoff)

    backoff = BackoffRetryIntervalCalculator(backoff_factor=retry_backoff, jitter=_Jitter())
    handlers = [
        ConnectionErrorRetryHandler(max_retry_count=max(1, server_error_retries), interval_calculator=backoff),
        RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
        _ServerErrors(max_retry_count=server_error_retries, interval_calculator=backoff),
    ]
    if not base_url.endswith("/"):
        base_url += "/"  # WebClient joins the method name onto it
    return WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=handlers)


class SlackSender:
    """Posts messages and files for one bot token. Thread-safe; caches channel name -> ID."""

    def __init__(self, client: Any, *, bot_name: str = "jarvis", cache_ttl: float = 600.0,
                 upload_retries: int = 2, retry_backoff: float = 0.5) -> None:
        self.client = client
        self.bot_name = bot_name
        self.cache_ttl = cache_ttl
        self.upload_retries = upload_retries
        self.retry_backoff = retry_backoff
        self._channels: dict[str, str] = {}
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> "SlackSender":
        if not settings.slack_bot_token:
            raise ConfigError("SLACK_BOT_TOKEN is not set",
                              hint="export SLACK_BOT_TOKEN=xoxb-... (see docs/jarvis.md)", code="not_configured")
        j = settings.jarvis
        client = make_client(settings.slack_bot_token, settings.slack_base_url, timeout=j.timeout,
                             rate_limit_retries=j.rate_limit_retries,
                             server_error_retries=j.server_error_retries, retry_backoff=j.retry_backoff)
        return cls(client, bot_name=j.bot_name, cache_ttl=j.channel_cache_seconds,
                   upload_retries=j.server_error_retries, retry_backoff=j.retry_backoff)

    def _call(self, method: str, channel: str | None, fn: Any, /, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Exception as exc:
            raise map_slack_error(exc, channel=channel, method=method, bot_name=self.bot_name) from exc

    # -- channels --------------------------------------------------------------------------

    def _pages(self, method: str, **params: Any) -> Iterator[dict[str, Any]]:
        fn = getattr(self.client, method.replace(".", "_"))
        cursor = None
        while True:
            resp = self._call(method, None, fn, cursor=cursor, **params) if cursor else \
                self._call(method, None, fn, **params)
            yield from resp.get("channels", [])
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return

    def member_channels(self) -> list[dict[str, Any]]:
        """The conversations the bot is in (users.conversations, paginated)."""
        # limit: Slack recommends no more than 200 per page
        # (https://docs.slack.dev/reference/methods/users.conversations).
        return list(self._pages("users.conversations", types="public_channel,private_channel",
                                exclude_archived=True, limit=200))

    def _refresh(self) -> None:
        self._channels = {c["name"]: c["id"] for c in self.member_channels() if c.get("name")}
        self._loaded_at = time.monotonic()

    def resolve(self, channel: str) -> str:
        """Channel name (or ID) -> ID, through the bot's own conversations, cached."""
        if CHANNEL_ID.match(channel):
            return channel
        with self._lock:
            if time.monotonic() - self._loaded_at > self.cache_ttl:
                self._refresh()
            cid = self._channels.get(channel)
            if cid is None:  # maybe the bot was invited since the cache was filled
                self._refresh()
                cid = self._channels.get(channel)
        if cid is not None:
            return cid
        raise self._why_missing(channel)

    def _why_missing(self, channel: str) -> ShipyardError:
        """Tell 'not invited' from 'no such channel' with one scan of the public channels; only on
        this error path (conversations.list is Tier 2: https://docs.slack.dev/reference/methods/conversations.list)."""
        details = {"channel": channel, "slack_method": "users.conversations"}
        try:
            for c in self._pages("conversations.list", types="public_channel", exclude_archived=False,
                                 limit=1000):
                if c.get("name") == channel:
                    if c.get("is_archived"):
                        return InputError(f"#{channel} is archived",
                                          hint="unarchive it or send to another channel",
                                          code="is_archived", **details)
                    return NotFoundError(f"the bot is not a member of #{channel}",
                                         hint=invite_hint(channel, self.bot_name),
                                         code="not_in_channel", **details)
        except ShipyardError as exc:
            log.debug("conversations.list failed while explaining a missing channel: %s", exc)
        return NotFoundError(f"Slack has no channel #{channel} that the bot can see",
                             hint=not_found_hint(channel, self.bot_name), code="channel_not_found", **details)

    def forget(self, channel: str) -> None:
        with self._lock:
            self._channels.pop(channel, None)

    # -- messages and files ----------------------------------------------------------------

    def post(self, channel_id: str, *, text: str, blocks: list[dict[str, Any]] | None = None,
             thread_ts: str | None = None, name: str | None = None) -> str:
        """chat.postMessage; returns the message's ts."""
        resp = self._call("chat.postMessage", name or channel_id, self.client.chat_postMessage,
                          channel=channel_id, text=text, blocks=blocks, thread_ts=thread_ts)
        return str(resp["ts"])

    def upload(self, channel_id: str, path: str, *, filename: str, thread_ts: str | None = None,
               name: str | None = None) -> str | None:
        """files_upload_v2 (getUploadURLExternal, POST to the upload URL, completeUploadExternal)
        into the thread of `thread_ts`; returns the file ID."""
        # slack_sdk's retry handlers cover the two API calls but not the POST to the upload URL
        # (a plain urlopen). A file is shared only by files.completeUploadExternal, so starting
        # over with a new upload URL after a 5xx there cannot post it twice.
        attempt = 0
        while True:
            try:
                resp = self.client.files_upload_v2(file=path, filename=filename, title=filename,
                                                   channel=channel_id, thread_ts=thread_ts)
                break
            except HTTPError as exc:
                if (exc.code >= 500 or exc.code == 429) and attempt < self.upload_retries:
                    attempt += 1
                    log.info("jarvis: upload URL answered HTTP %s; retry %d of %d", exc.code, attempt,
                             self.upload_retries)
                    time.sleep(self.retry_backoff * 2 ** (attempt - 1))
                    continue
                raise map_slack_error(exc, channel=name or channel_id, method="files_upload_v2",
                                      bot_name=self.bot_name) from exc
            except Exception as exc:
                raise map_slack_error(exc, channel=name or channel_id, method="files_upload_v2",
                                      bot_name=self.bot_name) from exc
        f = resp.get("file") or {}
        return f.get("id")
