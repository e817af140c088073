"""What a monitor file says, as plain frozen data (parsed by pulse/config.py)."""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shipyard.pulse.patterns import Pattern
from shipyard.pulse.schedule import Schedule
from shipyard.redact import redact

DEFAULT_TIMEOUT = 16.0  # Heartbeat's default `timeout` is 16s.
_RANGE = {"lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge}


class ConfigProblem(Exception):
    """One problem in one file, at one line."""

    def __init__(self, file: str, line: int | None, message: str, hint: str | None = None) -> None:
        self.file, self.line, self.message, self.hint = file, line, message, hint
        super().__init__(self.where + ": " + message)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        s = f"{self.where}: {self.message}"
        return f"{s} (hint: {self.hint})" if self.hint else s


@dataclass(frozen=True)
class TargetResult:
    """One URL (or address) of a check with several, as Heartbeat records one event per URL."""

    target: str
    ok: bool
    rtt_ms: float | None
    status: int | None = None
    error: str | None = None


@dataclass
class CheckResult:
    """One check of one monitor (a history row); `targets` when it had several."""

    monitor_id: str
    ts: float  # when the check started (epoch seconds)
    ok: bool
    rtt_ms: float | None
    status: int | None = None
    error: str | None = None
    lag_ms: float = 0.0  # start - scheduled time
    maintenance: bool = False
    cert_expires: float | None = None  # the TLS certificate's notAfter (epoch seconds), when seen
    targets: tuple[TargetResult, ...] = ()


@dataclass(frozen=True)
class MaintenanceWindow:
    """Either a daily window (`start` HH:MM + `duration`, optional weekdays and timezone, as in
    Gatus) or a one-off window (`from` .. `to`, ISO 8601)."""

    start_minute: int | None = None
    duration: float = 0.0
    days: frozenset[int] = frozenset(range(7))
    tz: str = "UTC"
    date_from: float | None = None
    date_to: float | None = None

    def contains(self, ts: float) -> bool:
        if self.date_from is not None:
            return self.date_from <= ts < (self.date_to or 0)
        zone = ZoneInfo(self.tz)
        local = datetime.fromtimestamp(ts, zone)
        # A window that starts late on one day can run past midnight: look at today and the
        # day before.
        for back in (0, 1):
            day = (local - timedelta(days=back)).date()
            if day.weekday() not in self.days:
                continue
            begin = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(
                minutes=self.start_minute or 0)
            if begin.timestamp() <= ts < begin.timestamp() + self.duration:
                return True
        return False


@dataclass(frozen=True)
class JsonCheck:
    """One Heartbeat `check.response.json` condition: equals / contains / regexp on a dotted path."""

    description: str
    op: str  # equals | contains | regexp
    path: str
    value: Any
    pattern: Pattern | None = None  # for regexp

    def passes(self, doc: Any) -> bool:
        cur = doc
        for part in self.path.split("."):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
                cur = cur[int(part)]
            else:
                return False
        if self.op == "has_fields":
            return True
        if self.op == "equals":
            return bool(cur == self.value)
        if self.op == "contains":
            return isinstance(cur, (str, list)) and self.value in cur
        if self.op == "range":
            return isinstance(cur, (int, float)) and not isinstance(cur, bool) and all(
                _RANGE[op](cur, bound) for op, bound in self.value)
        return isinstance(cur, str) and self.pattern is not None and self.pattern.search(cur)


@dataclass(frozen=True)
class TlsOptions:
    """Heartbeat's `ssl.*` (https://www.elastic.co/guide/en/beats/heartbeat/current/configuration-ssl.html)."""

    verification_mode: str = "full"  # none | certificate | full | strict
    certificate_authorities: tuple[str, ...] = ()  # PEM file paths or inline PEM
    certificate: str | None = None  # client certificate (path or inline PEM)
    key: str | None = None
    key_passphrase: str | None = None
    supported_protocols: tuple[str, ...] = ()  # TLSv1.2, TLSv1.3


@dataclass(frozen=True)
class Monitor:
    id: str
    type: str  # http | tcp | tls | push | dns | icmp
    targets: tuple[str, ...]  # never holds credentials: userinfo is moved to target_auth
    schedule: Schedule
    name: str = ""
    enabled: bool = True
    timeout: float = DEFAULT_TIMEOUT
    mode: str = "any"  # any | all: one address of a host name, or every address
    ipv4: bool = True
    ipv6: bool = True
    proxy_url: str | None = None
    proxy_headers: tuple[tuple[str, str], ...] = ()
    tls: TlsOptions = TlsOptions()
    # http
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    username: str | None = None
    password: str | None = None
    target_auth: tuple[tuple[str, str] | None, ...] = ()  # per target, from user:pw@ in the URL
    max_redirects: int = 0
    status: tuple[int, ...] = ()
    body_patterns: tuple[Pattern, ...] = ()
    response_headers: tuple[tuple[str, str], ...] = ()
    json_checks: tuple[JsonCheck, ...] = ()
    # tcp
    send: str | None = None
    receive: str | None = None
    # dns
    record_type: str = "A"
    expect: tuple[str, ...] = ()
    resolver: str | None = None
    # push (a dead man's switch): the token, and how long a missed ping may be late
    push_token: str | None = None
    push_every: float = 0.0
    grace: float = 0.0
    # response time: "slow" when the mean (or pNN) of the last `slow_window` good checks exceeds this (ms)
    slow_threshold_ms: float | None = None
    slow_window: int = 5
    slow_stat: str = "mean"  # mean | p50 .. p99
    cert_warn_days: tuple[int, ...] | None = None  # None: the settings' default
    # alerting
    channel: str | None = None
    failure_threshold: int = 3
    success_threshold: int = 2
    send_on_resolved: bool = True
    reminder: float | None = None
    maintenance: tuple[MaintenanceWindow, ...] = ()
    # values that must never be shown: passwords, expanded secret ${VARS}
    secrets: tuple[str, ...] = ()
    # where it came from
    file: str = ""
    line: int = 0

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def scrub(self, text: Any) -> str:
        """`text` with this monitor's secrets (and any URL password or token) masked."""
        return redact(text, self.secrets)

    @property
    def public_targets(self) -> list[str]:
        return [self.scrub(t) for t in self.targets]

    def in_maintenance(self, ts: float) -> bool:
        return any(w.contains(ts) for w in self.maintenance)

    def fingerprint(self) -> str:
        """Changes when anything that affects checking changes (a reload keeps unchanged ones)."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("file", "line")}
        return hashlib.sha1(repr(sorted(d.items())).encode()).hexdigest()
