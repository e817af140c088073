"""The alert state machine, driven by a clock the test controls (times are passed in)."""

from __future__ import annotations

from shipyard.pulse.alerting import MonitorState, observe
from shipyard.pulse.model import CheckResult
from shipyard.pulse.config import parse_text

T0 = 1_800_000_000.0


def monitor(extra: str = ""):
    return parse_text("- type: http\n  id: api\n  urls: ['http://h/']\n  schedule: '@every 10s'\n" + extra,
                      "api.yml")[0]


def feed(m, state, pattern: str, start: float = T0, step: float = 10.0, maintenance=False):
    """Feed results: '.' success, 'x' failure; returns [(index, kind)] of events."""
    out = []
    for i, c in enumerate(pattern):
        t = start + i * step
        r = CheckResult("api", t, c == ".", 5.0, 200 if c == "." else 500,
                        None if c == "." else "status 500", maintenance=maintenance)
        out += [(i, e.kind) for e in observe(state, m, r, t)]
    return out


def test_down_after_threshold_once_then_resolved_after_success_threshold():
    m, st = monitor(), MonitorState()
    # Two failures are not enough; a success resets the streak.
    assert feed(m, st, "xx.xx") == []
    assert st.status() == "failing"
    assert feed(m, st, "xxxxxxx", start=T0 + 100) == [(0, "down")]  # 3rd in a row (2 carried over)
    assert st.status() == "down" and st.triggered
    # One success is not enough (success_threshold 2); then resolved exactly once.
    assert feed(m, st, ".x..." , start=T0 + 200) == [(3, "resolved")]
    assert st.status() == "up" and not st.triggered


def test_incident_start_is_the_first_failure_of_the_streak():
    m, st = monitor(), MonitorState()
    evs = []
    for i, c in enumerate(".xxx"):
        evs += observe(st, m, CheckResult("api", T0 + i, c == ".", 1.0), T0 + i)
    [down] = evs
    assert down.since == T0 + 1 and down.failures == 3


def test_reminders_while_down():
    m, st = monitor("  alert: {reminder: 30s, failure_threshold: 1}\n"), MonitorState()
    # Checks every 10 s: down at 0, reminders at 30 s and 60 s, not in between.
    assert feed(m, st, "xxxxxxxx") == [(0, "down"), (3, "reminder"), (6, "reminder")]
    assert feed(m, st, "..", start=T0 + 80) == [(1, "resolved")]
    # After resolution, no more reminders; a new outage starts over.
    assert feed(m, st, "xxxx", start=T0 + 100) == [(0, "down"), (3, "reminder")]


def test_maintenance_neither_counts_nor_alerts():
    m, st = monitor(), MonitorState()
    assert feed(m, st, "xxxxxx", maintenance=True) == []
    assert st.consecutive_failures == 0 and st.checks == 6 and st.failures == 6
    assert st.status(in_maintenance=True) == "maintenance"
    # After the window, counting starts from zero.
    assert feed(m, st, "xxx", start=T0 + 100) == [(2, "down")]
    # A recovery during maintenance is not announced; after it, it is.
    assert feed(m, st, "....", start=T0 + 200, maintenance=True) == []
    assert feed(m, st, "..", start=T0 + 300) == [(1, "resolved")]


def test_send_on_resolved_false_still_closes_silently():
    m, st = monitor("  alert: {send-on-resolved: false, success-threshold: 1}\n"), MonitorState()
    feed(m, st, "xxx")
    evs = observe(st, m, CheckResult("api", T0 + 50, True, 1.0), T0 + 50)
    assert [(e.kind, e.fields.get("silent")) for e in evs] == [("resolved", True)]
