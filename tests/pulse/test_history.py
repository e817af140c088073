"""History and uptime arithmetic on both engines (SQLite file, PostgreSQL), with explicit times."""

from __future__ import annotations

import pytest

from shipyard.pulse.model import CheckResult
from shipyard.pulse.history import open_history

NOW = 1_800_000_000.0
H, D = 3600.0, 86400.0


@pytest.fixture(params=["sqlite", "postgres"])
def history(request, tmp_path):
    if request.param == "sqlite":
        h = open_history(None, default_dir=tmp_path)
    else:
        db = request.getfixturevalue("pg_database")
        h = open_history(f"postgresql://postgres@127.0.0.1:5432/{db}")
    yield h
    h.close()


def r(mid, ts, ok, rtt=10.0, maintenance=False):
    return CheckResult(mid, ts, ok, rtt if ok else None, 200 if ok else None,
                       None if ok else "refused", 1.5, maintenance)


def test_uptime_windows(history):
    rows = [
        # last 24 h: 3 ok, 1 failed -> 75 %
        r("api", NOW - 1 * H, True), r("api", NOW - 2 * H, True), r("api", NOW - 3 * H, False),
        r("api", NOW - 23 * H, True),
        # 2..6 days ago: 4 failed -> 7 d: 3/8
        *[r("api", NOW - d * D, False) for d in (2, 3, 4, 5)],
        # 10 and 20 days ago: 2 ok -> 30 d: 5/10
        r("api", NOW - 10 * D, True), r("api", NOW - 20 * D, True),
        # outside every window, in the future, and maintenance: never counted
        r("api", NOW - 31 * D, False), r("api", NOW + 60, False), r("api", NOW - 10, False, maintenance=True),
        r("web", NOW - 5, True),
    ]
    history.write_checks(rows)
    up = history.uptime(NOW)
    assert up["api"] == {"24h": 0.75, "7d": 3 / 8, "30d": 5 / 10}
    assert up["web"] == {"24h": 1.0, "7d": 1.0, "30d": 1.0}
    assert history.uptime(NOW, ["web"]) == {"web": up["web"]}
    # A monitor with checks only older than 24 h has no 24 h figure (None, not 0 %).
    assert history.uptime(NOW + 2 * D, ["web"])["web"]["24h"] is None
    assert history.count() == len(rows) and history.count("web") == 1


def test_series_hourly_and_recent(history):
    # Two checks in the first hour of the chart (12 ms, 18 ms), one failure in the current hour.
    first = NOW - 23 * H
    history.write_checks([r("api", first + 60, True, 12.0), r("api", first + 120, True, 18.0),
                          r("api", NOW + 30, False), r("api", NOW + 40, True, 7.0),
                          r("api", first - 10, True, 99.0)])  # before the chart
    series = history.series(NOW + 50, hours=24)["api"]
    assert series == [(first, 15.0, 1.0), (NOW, 7.0, 0.5)]
    recent = history.recent("api", limit=2)
    assert [x["ts"] for x in recent] == [NOW + 40, NOW + 30]
    assert recent[1]["ok"] is False and recent[1]["error"] == "refused" and recent[1]["lag_ms"] == 1.5


def test_uptime_matches_brute_force_at_any_time(history):
    """Whole hours come from the rollup, the partial hours at the ends from raw rows: the
    result must equal counting every check, for windows that start mid-hour."""
    import random

    rnd = random.Random(7)
    rows = []
    for mid in ("a", "b"):
        t = NOW - 32 * D
        while t < NOW + 2 * H:
            t += rnd.uniform(60, 1500)
            rows.append(r(mid, t, rnd.random() > 0.1, maintenance=rnd.random() < 0.02))
    # Written in several batches, like the service does (the rollup adds up across batches).
    for i in range(0, len(rows), 700):
        history.write_checks(rows[i:i + 700])
    for now in (NOW, NOW + 1234.5, NOW - 3 * D + 59.25):
        got = history.uptime(now)
        for mid in ("a", "b"):
            for name, w in (("24h", D), ("7d", 7 * D), ("30d", 30 * D)):
                sel = [x for x in rows if x.monitor_id == mid and now - w <= x.ts < now and not x.maintenance]
                assert got[mid][name] == pytest.approx(sum(x.ok for x in sel) / len(sel)), (now, mid, name)


def test_incidents(history):
    history.open_incident("api", NOW - 300, "status 500")
    history.open_incident("web", NOW - 100, "refused")
    history.resolve_incident("api", NOW - 60)
    inc = history.incidents()
    assert [(i["monitor_id"], i["resolved"]) for i in inc] == [("web", None), ("api", NOW - 60)]
    assert history.incidents(monitor_id="api")[0]["error"] == "status 500"
    history.prune(NOW)
    assert [i["monitor_id"] for i in history.incidents()] == ["web"]  # open incidents stay


def test_batches_are_bulk(history):
    rows = [r(f"m{i % 100}", NOW - (i + 1) * 0.01, i % 7 != 0) for i in range(20_000)]
    history.write_checks(rows)
    assert history.count() == 20_000
    up = history.uptime(NOW)
    assert len(up) == 100
    total_ok = sum(1 for x in rows if x.ok)
    assert sum(v["24h"] * 200 for v in up.values()) == pytest.approx(total_ok)
