"""Keep secrets out of logs, error reports and notifications.

Anything that may echo a connection string or a token (driver errors, settings dumps, URLs in
messages) goes through `redact()` before it is logged, written to an error report or sent.
"""

from __future__ import annotations

import re
from typing import Any

# scheme://user:password@host  ->  scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<secret>[^@\s/]+)(?P<tail>@)")
# key=value pairs in libpq / ODBC style connection strings and query strings.
_KV_SECRET = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|secret|token|api_key|apikey|access_key|secret_access_key|"
    r"aws_secret_access_key|aws_session_token|x-amz-security-token)\s*[=:]\s*)(?P<q>['\"]?)(?P<secret>[^\s'\"&;,]+)",
    re.IGNORECASE,
)
# Slack tokens (xoxb-, xoxp-, xapp-, ...), AWS access key ids and bearer tokens.
_TOKENS = re.compile(r"\b(?:xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|(?:AKIA|ASIA)[A-Z0-9]{16})\b")
_BEARER = re.compile(r"(?P<head>\bBearer\s+)(?P<secret>[A-Za-z0-9._~+/=-]+)", re.IGNORECASE)

MASK = "***"


def redact(text: Any, extra_secrets: "list[str] | tuple[str, ...]" = ()) -> str:
    """`text` as a string with passwords, tokens and the given secrets masked."""
    s = str(text)
    for secret in extra_secrets:
        if secret and len(secret) >= 3:
            s = s.replace(secret, MASK)
    s = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + m.group("tail"), s)
    s = _KV_SECRET.sub(lambda m: m.group("head") + m.group("q") + MASK, s)
    s = _BEARER.sub(lambda m: m.group("head") + MASK, s)
    s = _TOKENS.sub(MASK, s)
    return s


def redact_obj(obj: Any, extra_secrets: "list[str] | tuple[str, ...]" = ()) -> Any:
    """Redact every string inside dicts / lists (error reports, notices)."""
    if isinstance(obj, str):
        return redact(obj, extra_secrets)
    if isinstance(obj, dict):
        return {k: redact_obj(v, extra_secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v, extra_secrets) for v in obj)
    return obj
