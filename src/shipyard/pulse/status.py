"""A read-only view of a running service: what the status page, the API and /metrics show.

web.py sees only this: it cannot schedule, reload or record anything. Every value that leaves
here is already scrubbed of the monitors' secrets (URL credentials, secret ${VARS}).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from shipyard.pulse.alerting import MonitorState
from shipyard.pulse.clock import Clock
from shipyard.pulse.history import HistoryStore
from shipyard.pulse.model import ConfigProblem, Monitor
from shipyard.pulse.recorder import Recorder, iso
from shipyard.pulse.reloader import ConfigReloader


class Running(Protocol):
    """What the view reads from the service (PulseService has these)."""

    clock: Clock
    history: HistoryStore
    port: int | None
    monitors: dict[str, Monitor]
    states: dict[str, MonitorState]
    reloader: ConfigReloader
    recorder: Recorder
    lags: deque[float]
    checks_total: int
    skipped_total: int
    default_channel: str


class StatusView:
    def __init__(self, svc: Running) -> None:
        self._svc = svc

    @property
    def history(self) -> HistoryStore:
        return self._svc.history

    @property
    def port(self) -> int | None:
        return self._svc.port

    def now(self) -> float:
        return self._svc.clock.now()

    def monitor_ids(self) -> list[str]:
        return list(self._svc.monitors)

    def monitor(self, mid: str) -> Monitor | None:
        return self._svc.monitors.get(mid)

    def problems(self) -> list[ConfigProblem]:
        return list(self._svc.reloader.problems.values())

    def counters(self) -> dict[str, Any]:
        svc = self._svc
        return {"monitors": len(svc.monitors), "config_errors": len(svc.reloader.problems),
                "checks_total": svc.checks_total, "skipped_total": svc.skipped_total,
                "written_total": svc.recorder.written_total}

    def lag_percentile(self, q: float) -> float | None:
        lags = self._svc.lags
        if not lags:
            return None
        xs = sorted(lags)
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    def snapshot(self) -> list[dict[str, Any]]:
        svc = self._svc
        now = svc.clock.now()
        out = []
        for mid in sorted(svc.monitors):
            m = svc.monitors[mid]
            st = svc.states.get(mid) or MonitorState()
            last = st.last
            out.append({
                "id": mid, "name": m.display_name, "type": m.type, "targets": m.public_targets,
                "schedule": m.schedule.text, "status": st.status(m.in_maintenance(now)),
                "channel": m.channel or svc.default_channel, "file": m.file, "line": m.line,
                "last_check": iso(last.ts) if last else None,
                "last_check_ts": last.ts if last else None,
                "ok": last.ok if last else None,
                "rtt_ms": round(last.rtt_ms, 2) if last and last.rtt_ms is not None else None,
                "http_status": last.status if last else None,
                "error": m.scrub(last.error) if last and not last.ok and last.error else None,
                "consecutive_failures": st.consecutive_failures,
                "incident_since": iso(st.incident_started),
                "checks": st.checks, "failures": st.failures,
                "slow": st.slow, "slow_threshold_ms": m.slow_threshold_ms,
                "cert_expires": iso(last.cert_expires) if last and last.cert_expires else None,
                "cert_days_left": round((last.cert_expires - now) / 86400, 3)
                if last and last.cert_expires else None,
            })
        return out
