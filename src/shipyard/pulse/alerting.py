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

from dataclasses import dataclass, field
from typing import Literal

from shipyard.pulse.model import CheckResult, Monitor

EventKind = Literal["down", "resolved", "reminder"]


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

    def status(self, in_maintenance: bool = False) -> str:
        """What the status page shows: down (alerting), failing (below the threshold), up,
        maintenance, or pending (no check yet)."""
        if in_maintenance:
            return "maintenance"
        if self.triggered:
            return "down"
        if self.last is None:
            return "pending"
        return "up" if self.last.ok else "failing"


@dataclass
class AlertEvent:
    kind: EventKind
    monitor: Monitor
    ts: float
    error: str | None
    since: float | None  # when the incident started
    failures: int = 0
    fields: dict = field(default_factory=dict)


def observe(state: MonitorState, m: Monitor, r: CheckResult, now: float) -> list[AlertEvent]:
    """Feed one result; returns the alerts to send (usually none)."""
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
