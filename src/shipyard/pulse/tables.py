"""The history's tables and the rows written to them (pulse/history.py runs them).

Times are epoch seconds (double precision) so window arithmetic is the same on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from shipyard.pulse.model import CheckResult

WINDOWS = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS pulse_checks (
        monitor_id TEXT NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        ok BOOLEAN NOT NULL,
        rtt_ms DOUBLE PRECISION,
        status INTEGER,
        error TEXT,
        lag_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
        maintenance BOOLEAN NOT NULL DEFAULT FALSE
    )""",
    "CREATE INDEX IF NOT EXISTS pulse_checks_monitor_ts ON pulse_checks (monitor_id, ts)",
    "CREATE INDEX IF NOT EXISTS pulse_checks_ts ON pulse_checks (ts)",
    # Per URL / address of a check with several (Heartbeat writes one event per URL); a check
    # with one target is its pulse_checks row alone.
    """CREATE TABLE IF NOT EXISTS pulse_target_checks (
        monitor_id TEXT NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        target TEXT NOT NULL,
        ok BOOLEAN NOT NULL,
        rtt_ms DOUBLE PRECISION,
        status INTEGER,
        error TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS pulse_target_checks_monitor_ts ON pulse_target_checks (monitor_id, ts)",
    """CREATE TABLE IF NOT EXISTS pulse_incidents (
        monitor_id TEXT NOT NULL,
        started DOUBLE PRECISION NOT NULL,
        resolved DOUBLE PRECISION,
        error TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS pulse_incidents_monitor ON pulse_incidents (monitor_id, started)",
    # One row per monitor and hour, kept up to date by every batch: uptime and charts read
    # these instead of every check (30 days at 1 check/s is 2.6 M rows per monitor, 720 here).
    """CREATE TABLE IF NOT EXISTS pulse_hourly (
        monitor_id TEXT NOT NULL,
        hour DOUBLE PRECISION NOT NULL,
        checks INTEGER NOT NULL,
        ok INTEGER NOT NULL,
        rtt_sum DOUBLE PRECISION NOT NULL,
        rtt_n INTEGER NOT NULL,
        PRIMARY KEY (monitor_id, hour)
    )""",
]

HOUR = 3600.0

UPSERT_HOURLY = (
    "INSERT INTO pulse_hourly (monitor_id, hour, checks, ok, rtt_sum, rtt_n) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (monitor_id, hour) DO UPDATE SET checks = pulse_hourly.checks + excluded.checks, "
    "ok = pulse_hourly.ok + excluded.ok, rtt_sum = pulse_hourly.rtt_sum + excluded.rtt_sum, "
    "rtt_n = pulse_hourly.rtt_n + excluded.rtt_n"
)


def hourly_rows(results: list[CheckResult]) -> list[tuple]:
    """Aggregate a batch per (monitor, hour); maintenance checks do not count."""
    agg: dict[tuple[str, float], list[float]] = {}
    for r in results:
        if r.maintenance:
            continue
        a = agg.setdefault((r.monitor_id, (r.ts // HOUR) * HOUR), [0, 0, 0.0, 0])
        a[0] += 1
        if r.ok:
            a[1] += 1
            if r.rtt_ms is not None:
                a[2] += r.rtt_ms
                a[3] += 1
    return [(mid, hour, int(c), int(ok), s, int(n)) for (mid, hour), (c, ok, s, n) in agg.items()]


def floor_hour(t: float) -> float:
    return (t // HOUR) * HOUR


def ceil_hour(t: float) -> float:
    return -((-t) // HOUR) * HOUR

COLUMNS = ("monitor_id", "ts", "ok", "rtt_ms", "status", "error", "lag_ms", "maintenance")


def check_row(r: CheckResult) -> tuple:
    return (r.monitor_id, r.ts, bool(r.ok), r.rtt_ms, r.status, r.error, r.lag_ms, bool(r.maintenance))


TARGET_COLUMNS = ("monitor_id", "ts", "target", "ok", "rtt_ms", "status", "error")


def target_rows(results: list[CheckResult]) -> list[tuple]:
    return [(r.monitor_id, r.ts, t.target, bool(t.ok), t.rtt_ms, t.status, t.error)
            for r in results if len(r.targets) > 1 for t in r.targets]
