"""When to alert: one notice per transition, reminders while down, silence in maintenance.

Semantics follow Gatus (https://gatus.io/docs/alerting):
- a monitor is *triggered* (down) after `failure_threshold` consecutive failed checks; one
  `failure` notice is sent at that moment, not one per failed check;
- it is *resolved* after `success_threshold` consecutive successful checks while triggered;
  one `success` notice is sent when `send_on_resolved` (default true);
- `reminder` (ours; Gatus has none): while triggered, another `failure` notice every
  `reminder` seconds since the last one;
- during a maintenance window checks still run and are recorded (flagged), but they neither
  move the counters nor send anything; counting resumes when the window ends.

The engine is pure: the time is passed in, so tests drive it with their own clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from shipyard.pulse.model import CheckResult, Monitor

EventKind = Literal["down", "resolved", "reminder", "slow", "fast", "cert"]


@dataclass
class MonitorState:
    triggered: bool = False
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    first_failure_ts: float | None = None  # start of the current failure streak
    incident_started: float | None = None
    last_alert_ts: float | None = None
    last: CheckResult | None = None
    last_ok_ts: float | None = None
    checks: int = 0
    failures: int = 0
    last_error: str | None = None
    rtts: deque[float] = field(default_factory=lambda: deque(maxlen=1000))  # recent good checks' times
    slow: bool = False
    slow_since: float | None = None
    cert_warned: int | None = None  # the smallest warning threshold (days) already sent
    last_ping: float | None = None  # push monitors: the last ping, or when the monitor was loaded
    last_miss: float | None = None  # push monitors: when the last missed ping was recorded

    def status(self, in_maintenance: bool = False) -> str:
        """What the status page shows: down (alerting), failing (below the threshold), up,
        maintenance, or pending (no check yet)."""
        if in_maintenance:
            return "maintenance"
        if self.triggered:
            return "down"
        if self.last is None:
            return "pending"
        if not self.last.ok:
            return "failing"
        return "slow" if self.slow else "up"


@dataclass
class AlertEvent:
    kind: EventKind
    monitor: Monitor
    ts: float
    error: str | None
    since: float | None  # when the incident started
    failures: int = 0
    fields: dict = field(default_factory=dict)


def response_stat(rtts: list[float], stat: str) -> float:
    """The mean, or a percentile such as p95 (nearest rank), of response times in ms."""
    if stat == "mean":
        return sum(rtts) / len(rtts)
    xs = sorted(rtts)
    rank = -(-int(stat[1:]) * len(xs) // 100)  # nearest rank: ceil(p/100 * n)
    return xs[max(0, rank - 1)]


def observe_speed(state: MonitorState, m: Monitor, r: CheckResult, now: float) -> list[AlertEvent]:
    """The "slow" state (Gatus-like response-time condition, over the last N good checks):
    one `slow` notice when the statistic goes over the threshold, one `fast` when it is back."""
    if m.slow_threshold_ms is None or not r.ok or r.rtt_ms is None or r.maintenance:
        return []
    state.rtts.append(r.rtt_ms)
    window = list(state.rtts)[-m.slow_window:]
    if len(window) < m.slow_window:
        return []
    value = response_stat(window, m.slow_stat)
    fields = {"response_ms": round(value, 1), "threshold_ms": m.slow_threshold_ms, "stat": m.slow_stat,
              "checks": m.slow_window}
    if not state.slow and value > m.slow_threshold_ms:
        state.slow, state.slow_since = True, now
        return [AlertEvent("slow", m, now, None, now, fields=fields)]
    if state.slow and value <= m.slow_threshold_ms:
        since, state.slow, state.slow_since = state.slow_since, False, None
        return [AlertEvent("fast", m, now, None, since, fields=fields)]
    return []


def observe_cert(state: MonitorState, m: Monitor, r: CheckResult, now: float,
                 warn_days: tuple[int, ...]) -> list[AlertEvent]:
    """One `cert` warning as the certificate's days left cross each threshold (30, then 7);
    a renewed certificate re-arms them."""
    if r.cert_expires is None or not warn_days:
        return []
    days = (r.cert_expires - now) / 86400
    crossed = [d for d in sorted(warn_days) if days <= d]
    if not crossed:
        state.cert_warned = None  # renewed (or never close): warn again next time
        return []
    lowest = crossed[0]
    if state.cert_warned is not None and state.cert_warned <= lowest:
        return []
    state.cert_warned = lowest
    return [AlertEvent("cert", m, now, None, None, fields={"days_left": int(days), "threshold_days": lowest,
                                                           "expires": r.cert_expires})]


def observe(state: MonitorState, m: Monitor, r: CheckResult, now: float) -> list[AlertEvent]:
    """Feed one result; returns the down/resolved/reminder alerts to send (usually none)."""
    state.last = r
    state.checks += 1
    if not r.ok:
        state.failures += 1
        state.last_error = r.error
    else:
        state.last_ok_ts = r.ts
    if r.maintenance:
        return []
    events: list[AlertEvent] = []
    if r.ok:
        state.consecutive_failures = 0
        state.first_failure_ts = None
        state.consecutive_successes += 1
        if state.triggered and state.consecutive_successes >= m.success_threshold:
            state.triggered = False
            since = state.incident_started
            state.incident_started = None
            state.last_alert_ts = None
            if m.send_on_resolved:
                events.append(AlertEvent("resolved", m, now, None, since))
            else:
                # Still close the incident in history, just without a notice.
                events.append(AlertEvent("resolved", m, now, None, since, fields={"silent": True}))
        return events
    state.consecutive_successes = 0
    state.consecutive_failures += 1
    if state.first_failure_ts is None:
        state.first_failure_ts = r.ts
    if not state.triggered:
        if state.consecutive_failures >= m.failure_threshold:
            state.triggered = True
            state.incident_started = state.first_failure_ts
            state.last_alert_ts = now
            events.append(AlertEvent("down", m, now, r.error, state.incident_started,
                                     failures=state.consecutive_failures))
    elif m.reminder and state.last_alert_ts is not None and now - state.last_alert_ts >= m.reminder:
        state.last_alert_ts = now
        events.append(AlertEvent("reminder", m, now, r.error, state.incident_started,
                                 failures=state.consecutive_failures))
    return events
