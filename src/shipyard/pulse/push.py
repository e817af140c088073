"""Push monitors (a dead man's switch): pings come in, a missed one is a failed check.

Pure functions over plain data, time passed in; the service calls them on its loop.
- `find(token, monitors)` compares the token against every push monitor's with
  hmac.compare_digest (constant time: how long it takes says nothing about how much of a
  token matched), and always compares all of them.
- `RateLimit` allows `per_minute` requests per key (a token, or a client address for tokens
  that match nothing, so guessing is slow too).
- `overdue(m, last, now)` says when a ping is missed: none since `every + grace`.
"""

from __future__ import annotations

import hmac
from collections import deque

from shipyard.pulse.model import CheckResult, Monitor

MAX_MESSAGE = 500  # characters of a pushed `msg` kept


def find(token: str, monitors: dict[str, Monitor]) -> Monitor | None:
    given = token.encode()
    hit = None
    for m in monitors.values():
        if m.type == "push" and m.push_token is not None:
            if hmac.compare_digest(given, m.push_token.encode()):
                hit = m
    return hit


class RateLimit:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float) -> bool:
        q = self._seen.setdefault(key, deque())
        while q and q[0] <= now - 60:
            q.popleft()
        if len(q) >= self.per_minute:
            return False
        q.append(now)
        if len(self._seen) > 10_000:  # forget idle keys: a scan of random tokens cannot grow this
            for k in [k for k, v in self._seen.items() if not v or v[-1] <= now - 60]:
                del self._seen[k]
        return True


def ping_result(m: Monitor, now: float, status: str, msg: str | None) -> CheckResult:
    ok = status != "down"
    text = (msg or "").strip()[:MAX_MESSAGE]
    error = None if ok else m.scrub(f"pushed down: {text}" if text else "pushed down")
    return CheckResult(m.id, now, ok, None, None, error)


def overdue(m: Monitor, last: float, last_miss: float | None, now: float) -> CheckResult | None:
    """A failed check when the last ping (or the monitor's start) is older than every + grace;
    while none comes, one more each every + grace (not one a second)."""
    late = now - last
    if late <= m.push_every + m.grace or (last_miss is not None and now - last_miss <= m.push_every + m.grace):
        return None
    return CheckResult(m.id, now, False, None, None,
                       f"no ping for {late:.0f}s (expected every {m.push_every:g}s + {m.grace:g}s grace)")
