"""The payload callers send, and how it becomes a Slack message.

The contract is the blog's and must not change (callers already send it):

    {"heading": "optional", "message": "required", "slack_channel": "required channel name",
     "attachment": {"bucket": "...", "key": "..."}}

Rendering: the heading is a `header` block, the message one or more `section` blocks in mrkdwn,
and the top-level `text` is always set (Slack uses it for notifications and screen readers:
https://docs.slack.dev/reference/methods/chat.postMessage#text_usage).

`&`, `<` and `>` are Slack's control characters and must be escaped as HTML entities
(https://docs.slack.dev/messaging/formatting-message-text#escaping); mention tokens written the
way Slack writes them (`<!channel>`, `<!here>`, `<@U123ABC>`, ...) pass through unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from shipyard.errors import InputError, did_you_mean
from shipyard.store.base import validate_key

# Slack's documented limits (https://docs.slack.dev/reference/block-kit/blocks/header-block,
# .../section-block, https://docs.slack.dev/reference/methods/chat.postMessage#truncating).
HEADER_MAX = 150
SECTION_MAX = 3000
TEXT_MAX = 40_000
BLOCKS_MAX = 50
# Slack channel names: at most 80 characters, no spaces or periods, lowercase.
_CHANNEL_NAME = re.compile(r"^[^\s.,#<>@A-Z]{1,80}$")
# A conversation ID (public C..., private/mpim G..., DM D...) may be given instead of a name.
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{8,}$")

# Mention tokens as Slack writes them: special mentions, users, user groups, channel links.
MENTION = re.compile(
    r"<(?:!(?:channel|here|everyone)"
    r"|@[UW][A-Z0-9]+"
    r"|!subteam\^[A-Z0-9]+"
    r"|#[CG][A-Z0-9]+)"
    r"(?:\|[^<>&\n]*)?>"
)

FIELDS = ("heading", "message", "slack_channel", "attachment")


def _escape_plain(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape(text: str, *, mentions: bool = True) -> str:
    """Escape Slack's control characters; keep mention tokens when `mentions` is true."""
    if not mentions:
        return _escape_plain(text)
    out: list[str] = []
    last = 0
    for m in MENTION.finditer(text):
        out.append(_escape_plain(text[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_escape_plain(text[last:]))
    return "".join(out)


class AttachmentRef(BaseModel):
    """An object to attach: `bucket` is an S3 bucket (or s3://bucket/prefix) or a local folder."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    bucket: str
    key: str

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        return v

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        v = v.lstrip("/")  # the blog writes keys as /service_name/file
        try:
            validate_key(v)
        except InputError as exc:
            raise ValueError(exc.message) from None
        return v


class Payload(BaseModel):
    """One notification, exactly as callers send it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    heading: str | None = None
    message: str
    slack_channel: str
    attachment: AttachmentRef | None = None

    @field_validator("heading")
    @classmethod
    def _heading(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("message")
    @classmethod
    def _message(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        if len(v) > TEXT_MAX:
            raise ValueError(
                f"is {len(v):,} characters; Slack truncates messages over {TEXT_MAX:,}: "
                "attach the rest as a file"
            )
        return v

    @field_validator("slack_channel")
    @classmethod
    def _channel(cls, v: str) -> str:
        v = v.lstrip("#")
        if CHANNEL_ID.match(v):
            return v
        v = v.lower()
        if not v:
            raise ValueError("must not be empty")
        if not _CHANNEL_NAME.match(v):
            suggestion = re.sub(r"[\s.,]+", "-", v.strip())
            raise ValueError(
                f"{v!r} is not a Slack channel name (lowercase, no spaces or periods, at most 80 "
                f"characters); did you mean {suggestion[:80]!r}?"
            )
        return v

    # -- rendering -------------------------------------------------------------------------

    def blocks(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if self.heading:
            heading = escape(self.heading)
            if len(heading) > HEADER_MAX:
                # Cut the raw text, then escape, so no entity is cut in half; the full heading
                # stays in `text`.
                raw = self.heading[:HEADER_MAX]
                while len(escape(raw)) > HEADER_MAX - 1:
                    raw = raw[:-1]
                heading = escape(raw) + "…"
            blocks.append({"type": "header", "text": {"type": "plain_text", "text": heading, "emoji": True}})
        for chunk in split_mrkdwn(escape(self.message), SECTION_MAX):
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
        if len(blocks) > BLOCKS_MAX:
            # 40,000 characters fit in 14 sections; this only guards a future limit change.
            raise InputError(f"message needs {len(blocks)} blocks; Slack allows {BLOCKS_MAX}",
                             hint="shorten the message or attach it as a file")
        return blocks

    def text(self) -> str:
        """The top-level `text`: the notification line and the fallback for old clients."""
        body = escape(self.message)
        text = f"{escape(self.heading)}\n{body}" if self.heading else body
        return text[:TEXT_MAX]


def split_mrkdwn(text: str, limit: int) -> list[str]:
    """Split at line ends (else spaces) into pieces of at most `limit` characters, never inside
    a mention token or an HTML entity."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        # Do not cut a `<...>` token or an `&...;` entity in two.
        lt, amp = text.rfind("<", 0, cut), text.rfind("&", 0, cut)
        if lt > text.rfind(">", 0, cut):
            cut = lt or cut
        elif amp > text.rfind(";", 0, cut) and cut - amp < 6:
            cut = amp or cut
        pieces.append(text[:cut])
        text = text[cut + 1:] if text[cut] == "\n" else text[cut:]
    if text:
        pieces.append(text)
    return pieces


def _did_you_mean(name: str) -> str:
    close = did_you_mean(name, FIELDS)
    return f"; {close}" if close else ""


# A payload is a flat object; anything nested deeper than this is refused before it is parsed
# (json.loads recurses: a body of 100,000 '[' would raise RecursionError, a 500).
MAX_DEPTH = 32
_JSON_SPECIAL = re.compile(r'[\\"\[\]{}]')


def _too_deep(text: str, max_depth: int) -> bool:
    """Whether JSON text nests deeper than `max_depth`: one pass over the special characters,
    strings and escapes skipped, no recursion, no backtracking (linear in the body)."""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    depth, in_string, escaped_at = 0, False, -1
    for m in _JSON_SPECIAL.finditer(text):
        i, c = m.start(), m.group()
        if i == escaped_at:
            continue
        if in_string:
            if c == "\\":
                escaped_at = i + 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif c in "]}":
            depth -= 1
    return False


def _nesting(obj: Any, max_depth: int) -> bool:
    """Whether a decoded object nests deeper than `max_depth` (iterative)."""
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (dict, list)):
            if d > max_depth:
                return True
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return False


def _deep_error(max_depth: int) -> InputError:
    return InputError(f"the payload nests deeper than {max_depth} levels",
                      hint='send a flat object: {"message": "...", "slack_channel": "..."}',
                      code="invalid_payload")


def load_json(data: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH) -> Any:
    """JSON text or UTF-8 bytes decoded, with the depth checked first; InputError otherwise."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("the payload is not UTF-8 text", hint="send the payload as UTF-8 JSON",
                             code="invalid_payload") from None
    if _too_deep(data, max_depth):
        raise _deep_error(max_depth)
    try:
        return json.loads(data)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"the payload is not valid JSON: {exc}",
                         hint='send {"message": "...", "slack_channel": "..."}',
                         code="invalid_payload") from None


def parse_payload(data: Any, *, max_depth: int = MAX_DEPTH) -> Payload:
    """A Payload from a dict, JSON text or bytes; InputError naming every problem otherwise."""
    if isinstance(data, Payload):
        return data
    if isinstance(data, (str, bytes, bytearray)):
        data = load_json(data, max_depth=max_depth)
    elif _nesting(data, max_depth):
        raise _deep_error(max_depth)
    if not isinstance(data, dict):
        raise InputError(f"the payload must be a JSON object, not {type(data).__name__}",
                         hint='send {"message": "...", "slack_channel": "..."}', code="invalid_payload")
    try:
        return Payload.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            if err["type"] == "missing":
                problems.append(f"{loc!r} is required")
            elif err["type"] == "extra_forbidden":
                problems.append(f"unknown field {loc!r}{_did_you_mean(str(err['loc'][-1]))}")
            else:
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(f"{loc!r} {msg}" if err["type"] == "value_error" else f"{loc!r}: {msg}")
        raise InputError(
            "invalid payload: " + "; ".join(problems),
            hint='the payload is {"heading": "optional", "message": "required", "slack_channel": '
            '"required", "attachment": {"bucket": "...", "key": "..."} (optional)}',
            code="invalid_payload",
        ) from None
