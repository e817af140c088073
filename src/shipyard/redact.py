"""Keep secrets out of logs, error reports and notifications.

Anything that may echo a connection string or a token (driver errors, settings dumps, URLs in
messages) goes through `redact()` before it is logged, written to an error report or sent.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Iterable
from urllib.parse import unquote

# scheme://user:password@host -> scheme://user:***@host. The password runs to the LAST '@' on the
# line that is followed by a host (a password may hold '@', spaces, '%', quotes, non-ASCII);
# masking too much is preferred to leaking a fragment. `host:5432/...` is a port, not a password.
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?!\d{1,5}(?:[/?#\s\"'),]|$))"
    r"(?P<secret>[^\n]{1,256})(?P<tail>@)(?=[\w\[.-])")
# key=value pairs in libpq / ODBC style connection strings and query strings; a quoted value runs
# to its closing quote (libpq escapes a quote with a backslash).
_KV_SECRET = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|secret|token|api_key|apikey|access_key|secret_access_key|"
    r"aws_secret_access_key|aws_session_token|x-amz-security-token)\s*[=:]\s*)"
    r"(?:(?P<q>['\"])(?:\\.|(?!(?P=q)).)*(?P=q)?|[^\s'\"&;,]+)",
    re.IGNORECASE,
)
# Slack tokens (xoxb-, xoxp-, xapp-, ...), AWS access key ids and bearer tokens.
_TOKENS = re.compile(r"\b(?:xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|(?:AKIA|ASIA)[A-Z0-9]{16})\b")
_BEARER = re.compile(r"(?P<head>\bBearer\s+)(?P<secret>[A-Za-z0-9._~+/=-]+)", re.IGNORECASE)
# Characters at which drivers and URL parsers cut a password into pieces they then print.
_CUTS = re.compile(r"[@:/\s?#&=%'\"\\;,]+")

MASK = "***"

# Secrets known to be in use (passwords of configured URLs, tokens): masked wherever they or a
# fragment of them appear, even without a URL around them (a driver printing "ss word@host").
_known: list[str] = []
_known_lock = threading.Lock()


def url_password(url: str) -> str | None:
    """The password of `scheme://user:password@host...`, taking the last '@' (a raw '@' in the
    password is common); None without one."""
    _, sep, rest = str(url).partition("://")
    if not sep or "@" not in rest:
        return None
    userinfo = rest.rsplit("@", 1)[0]
    _, colon, password = userinfo.partition(":")
    return password if colon and password else None


def _fragments(secret: str) -> list[str]:
    """The secret, its percent-decoded form, and every run of its pieces between the characters
    parsers cut at (longest first); runs shorter than 4 characters are left alone (masking every
    "abc" in every message would say nothing and hide much)."""
    out: set[str] = set()
    for form in {secret, unquote(secret)}:
        out.add(form)
        bounds = [(m.start(), m.end()) for m in _CUTS.finditer(form)]
        starts = [0] + [e for _, e in bounds]
        ends = [s for s, _ in bounds] + [len(form)]
        for i, a in enumerate(starts):
            for b in ends[i:]:
                if b - a >= 4:
                    out.add(form[a:b])
    return sorted(out, key=len, reverse=True)


def remember_secrets(values: Iterable[str | None]) -> None:
    """The secrets in force (settings calls this when it loads): they and their fragments are
    masked in everything redact() sees, until the next call or forget_secrets()."""
    frags: set[str] = set()
    for v in values:
        if v and len(v) >= 3:
            frags.update(_fragments(v))
    with _known_lock:
        _known[:] = sorted(frags, key=len, reverse=True)[:5000]


def forget_secrets() -> None:
    with _known_lock:
        _known.clear()


def redact(text: Any, extra_secrets: "list[str] | tuple[str, ...]" = ()) -> str:
    """`text` as a string with passwords, tokens and the given secrets masked."""
    s = str(text)
    for secret in extra_secrets:
        if secret and len(secret) >= 3:
            s = s.replace(secret, MASK)
    s = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + m.group("tail"), s)
    s = _KV_SECRET.sub(lambda m: m.group("head") + MASK, s)
    s = _BEARER.sub(lambda m: m.group("head") + MASK, s)
    s = _TOKENS.sub(MASK, s)
    for frag in _known:
        if frag in s:
            s = s.replace(frag, MASK)
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
