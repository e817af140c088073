"""The monitor service against real servers on 127.0.0.1, on a manual clock: schedules,
alerts via the outbox, maintenance, reload and invalid config, TCP, PostgreSQL history."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from shipyard.pulse.history import open_history
from tests.helpers import read_outbox, wait_for
from tests.pulse.conftest import write_monitors


def http_monitor(url: str, mid: str = "api", schedule: str = "@every 1s", extra: str = "",
                 timeout: str = "1s") -> str:
    return (f"- type: http\n  id: {mid}\n  name: {mid.upper()} service\n  urls: ['{url}']\n"
            f"  schedule: '{schedule}'\n  timeout: {timeout}\n{extra}")


def results(run, mid):
    run.flush()
    return sorted(run.svc.history.recent(mid, limit=10_000), key=lambda x: x["ts"])


def notices(n: int, what: str = "notices") -> list[dict]:
    """The outbox once it holds at least `n` notices (they are sent off the check loop)."""
    return wait_for(lambda: x if len(x := read_outbox()) >= n else None, what=what)


def test_every_schedule_fires_on_time_without_drift(tmp_path, backend, run_pulse):
    write_monitors(tmp_path / "conf" / "a.yml", http_monitor(backend.url, schedule="@every 1s"))
    run = run_pulse(tmp_path / "conf")
    # Each check takes 0.3 s of the service's time: a scheduler that counted the interval from
    # the end of a check would drift by 0.3 s per check, 3 s over this run.
    backend.on_request = lambda: run.clock.advance(0.3)
    run.step(10.0, by=0.1)
    backend.on_request = None
    rows = results(run, "api")
    assert 9 <= len(rows) <= 11, len(rows)
    t0 = rows[0]["ts"]
    for i, row in enumerate(rows):
        assert abs((row["ts"] - t0) - i * 1.0) < 1e-3, (i, row["ts"] - t0)  # on its slot of the grid
        assert row["lag_ms"] < 100 and row["ok"]
    assert backend.hits == len(rows)


def test_cron_schedule_with_seconds_fires_on_the_second(tmp_path, backend, run_pulse):
    write_monitors(tmp_path / "conf" / "a.yml", http_monitor(backend.url, schedule="* * * * * * *"))
    run = run_pulse(tmp_path / "conf")
    run.step(3.0, by=0.25)
    rows = results(run, "api")
    assert len(rows) == 3
    for row in rows:
        assert min(row["ts"] % 1.0, 1 - row["ts"] % 1.0) < 1e-3, row["ts"]  # at the top of a second


def test_down_resolved_and_reminders_one_notice_per_transition(tmp_path, backend, run_pulse):
    write_monitors(tmp_path / "conf" / "a.yml", http_monitor(
        backend.url + "/health", extra="  check.response.status: [200]\n"
        "  alert: {channel: team-api, reminder: 3s}\n"))
    run = run_pulse(tmp_path / "conf")
    st = lambda: run.svc.states["api"]  # noqa: E731
    run.until(lambda: st().checks >= 3, what="healthy checks")
    assert read_outbox() == []

    backend.mode = "fail"
    run.until(lambda: st().triggered, what="down")
    t_down = run.clock.now()
    run.step(10.0, by=1.0)  # 10 more failed checks: no new 'down', a reminder every 3 s
    notes = notices(4)
    downs = [n for n in notes if n["title"] == "API service is down"]
    assert len(downs) == 1
    d = downs[0]
    assert d["tool"] == "pulse" and d["level"] == "failure" and d["channel"] == "team-api"
    assert "status 500, expected [200]" in d["message"] and d["fields"]["monitor"] == "api"
    reminders = [n for n in notes if n["title"] == "API service is still down"]
    assert len(reminders) == 3 and all(n["fields"]["reminder"] for n in reminders)
    assert st().failures >= 10

    backend.mode = "ok"
    run.until(lambda: not st().triggered, what="resolved")
    run.step(3.0, by=1.0)
    notes = notices(5)
    resolved = [n for n in notes if n["level"] == "success"]
    assert len(resolved) == 1 and resolved[0]["title"] == "API service is back up"
    assert len([n for n in notes if n["title"].endswith("is down")]) == 1
    # The incident is in the history, resolved.
    wait_for(lambda: run.svc.history.incidents(monitor_id="api")[0]["resolved"], what="incident resolved")
    inc = run.svc.history.incidents(monitor_id="api")[0]
    assert inc["started"] <= t_down and "status 500" in inc["error"]


def test_connection_refused_and_timeouts(tmp_path, backend, run_pulse):
    backend.mode, backend.delay = "slow", 0.5
    write_monitors(tmp_path / "conf" / "a.yml",
                   http_monitor(backend.url, mid="slow", timeout="200ms", extra="  alert: {failure_threshold: 2}\n")
                   + http_monitor("http://127.0.0.1:9/", mid="gone", extra="  alert: {failure_threshold: 2}\n"))
    run = run_pulse(tmp_path / "conf")
    run.until(lambda: run.svc.states["slow"].triggered and run.svc.states["gone"].triggered, what="both down")
    notices(2, "both down notices")
    assert "timed out after 0.2s" in run.svc.states["slow"].last_error
    assert "connection failed" in run.svc.states["gone"].last_error
    assert sorted(n["title"] for n in read_outbox()) == ["GONE service is down", "SLOW service is down"]
    # The slow server really is slow: a timed-out check does not wait for it.
    assert all(r["rtt_ms"] < 450 for r in results(run, "slow"))


def test_server_stopped_then_back(tmp_path, backend, run_pulse):
    write_monitors(tmp_path / "conf" / "a.yml", http_monitor(backend.url, extra="  alert: {success_threshold: 1}\n"))
    run = run_pulse(tmp_path / "conf")
    run.until(lambda: run.svc.states["api"].checks >= 2, what="checks")
    backend.stop()
    run.until(lambda: run.svc.states["api"].triggered, what="down")
    backend.start()
    run.until(lambda: not run.svc.states["api"].triggered, what="back up")
    run.step(3.0, by=1.0)  # and no third notice
    assert [n["level"] for n in notices(2)] == ["failure", "success"]


def test_nothing_during_maintenance(tmp_path, backend, run_pulse):
    now = datetime.now(timezone.utc)
    window = (f"  maintenance:\n    - {{from: '{(now - timedelta(minutes=1)).isoformat()}', "
              f"to: '{(now + timedelta(minutes=5)).isoformat()}'}}\n")
    backend.mode = "fail"
    write_monitors(tmp_path / "conf" / "a.yml", http_monitor(backend.url, extra="  alert: {failure_threshold: 1}\n" + window))
    run = run_pulse(tmp_path / "conf")
    run.until(lambda: run.svc.states["api"].checks >= 8, what="checks")
    assert read_outbox() == []
    assert run.svc.status.snapshot()[0]["status"] == "maintenance"
    rows = results(run, "api")
    assert rows and all(r["maintenance"] and not r["ok"] for r in rows)
    # Maintenance checks do not count against uptime.
    assert run.svc.history.uptime(run.clock.now()) == {}


def test_tcp_monitor(tmp_path, tcp_listener, run_pulse):
    write_monitors(tmp_path / "conf" / "db.yml",
                   f"- type: tcp\n  id: db\n  hosts: ['127.0.0.1']\n  ports: [{tcp_listener.port}]\n"
                   "  schedule: '@every 1s'\n  check.send: \"PING\\r\\n\"\n  check.receive: '+PONG'\n"
                   "  timeout: 500ms\n  alert: {failure_threshold: 2}\n")
    run = run_pulse(tmp_path / "conf")
    run.until(lambda: run.svc.states["db"].checks >= 3, what="tcp checks")
    assert run.svc.states["db"].failures == 0
    tcp_listener.stop()
    run.until(lambda: run.svc.states["db"].triggered, what="tcp down")
    [n] = notices(1, "tcp down notice")
    assert n["title"] == "db is down" and "connection failed" in n["message"]
    assert n["channel"] == "pulse-alerts"  # settings.pulse.channel, the default


def test_reload_add_change_invalid_duplicate_delete(tmp_path, backend, run_pulse):
    conf = tmp_path / "conf"
    write_monitors(conf / "a.yml", http_monitor(backend.url, mid="a"))
    run = run_pulse(conf)
    svc = run.svc
    assert set(svc.monitors) == {"a"}

    # Added: a new file is picked up within a reload interval.
    write_monitors(conf / "team" / "b.yml", http_monitor(backend.url, mid="b"))
    run.until(lambda: "b" in svc.monitors and svc.states["b"].checks > 0, what="b added")

    # Invalid: the last good version keeps running; one warning naming file and line.
    write_monitors(conf / "a.yml", http_monitor(backend.url, mid="a", timeout="soon"))
    run.until(lambda: "a.yml" in svc.reloader.problems, what="problem reported")
    before = svc.states["a"].checks
    run.step(3.0, by=1.0)
    assert svc.states["a"].checks > before  # still checking
    [warn] = notices(1, "the warning")
    assert warn["level"] == "warning" and warn["title"] == "Invalid monitor file a.yml:6"
    assert "not a duration" in warn["message"] and "keeping its last good version" in warn["message"]
    assert warn["fields"]["line"] == 6 and warn["channel"] == "pulse-alerts"

    # Fixed and changed: the new schedule applies, the problem clears.
    write_monitors(conf / "a.yml", http_monitor(backend.url, mid="a", schedule="@every 3s"))
    run.until(lambda: svc.monitors["a"].schedule.every == 3 and not svc.reloader.problems, what="fixed")

    # A new file reusing an id is rejected, naming both files; the original keeps running.
    write_monitors(conf / "c.yml", http_monitor(backend.url, mid="a", schedule="@every 5s"))
    run.until(lambda: "c.yml" in svc.reloader.problems, what="duplicate reported")
    assert "already defined in a.yml:1" in svc.reloader.problems["c.yml"].message
    assert svc.monitors["a"].file == "a.yml" and svc.monitors["a"].schedule.every == 3
    (conf / "c.yml").unlink()

    # Deleted: its monitors stop.
    (conf / "team" / "b.yml").unlink()
    run.until(lambda: "b" not in svc.monitors and not svc.reloader.problems, what="b removed")
    n = svc.history.count("b")
    run.step(3.0, by=1.0)
    assert svc.history.count("b") == n
    assert len([x for x in notices(2) if x["level"] == "warning"]) == 2


def test_history_in_postgres(tmp_path, backend, run_pulse, pg_database):
    url = f"postgresql://postgres@127.0.0.1:5432/{pg_database}"
    hist = open_history(url)
    try:
        write_monitors(tmp_path / "conf" / "a.yml", http_monitor(backend.url))
        run = run_pulse(tmp_path / "conf", history=hist)
        run.until(lambda: run.svc.recorder.written_total >= 5, what="rows written")
        run.stop()
        check = open_history(url)
        try:
            assert check.count("api") == run.svc.checks_total
            assert check.uptime(run.clock.now() + 1)["api"]["24h"] == 1.0
        finally:
            check.close()
    finally:
        hist.close()


def test_settings_database_url_selects_postgres(tmp_path, monkeypatch, backend, run_pulse, pg_database):
    from shipyard.settings import get_settings

    monkeypatch.setenv("SHIPYARD_PULSE__DATABASE_URL", f"postgresql://postgres@127.0.0.1:5432/{pg_database}")
    write_monitors(tmp_path / "conf" / "a.yml", http_monitor(backend.url))
    run = run_pulse(tmp_path / "conf", settings=get_settings(fresh=True))
    run.until(lambda: run.svc.recorder.written_total >= 2, what="rows written")
    assert type(run.svc.history).__name__ == "PostgresHistory"
    assert not (tmp_path / "pulse.sqlite3").exists()


def test_down_state_survives_a_restart(tmp_path, backend, run_pulse):
    """Down when the service stopped -> still down after a restart: no second 'down' notice,
    and the recovery is announced once."""
    hist = open_history(None, default_dir=tmp_path)
    try:
        hist.open_incident("api", time.time() - 600, "status 500")
        backend.mode = "fail"
        write_monitors(tmp_path / "conf" / "a.yml", http_monitor(backend.url))
        run = run_pulse(tmp_path / "conf", history=hist)
        run.until(lambda: run.svc.states["api"].checks >= 6, what="failed checks")
        assert run.svc.status.snapshot()[0]["status"] == "down"
        assert read_outbox() == []
        backend.mode = "ok"
        run.until(lambda: not run.svc.states["api"].triggered, what="resolved")
        [n] = notices(1)
        assert n["level"] == "success" and "resolved after 10m" in n["message"]
        wait_for(lambda: hist.open_incidents() == {}, what="incident closed")
        # Removing a monitor while it is down closes its incident too.
        backend.mode = "fail"
        run.until(lambda: run.svc.states["api"].triggered, what="down again")
        wait_for(lambda: "api" in hist.open_incidents(), what="incident open")
        (tmp_path / "conf" / "a.yml").unlink()
        run.step(2.0, by=1.0)
        wait_for(lambda: hist.open_incidents() == {}, what="incident closed on removal")
    finally:
        hist.close()


def test_database_outage_loses_nothing(tmp_path, backend, run_pulse, pg_admin_url, pg_database, caplog):
    """Every PostgreSQL session of the history is killed mid-run: the batch that failed is kept,
    the store reconnects, and at the end every check is in the table exactly once."""
    import psycopg

    url = f"postgresql://postgres@127.0.0.1:5432/{pg_database}"
    hist = open_history(url)
    try:
        write_monitors(tmp_path / "conf" / "a.yml", http_monitor(backend.url))
        run = run_pulse(tmp_path / "conf", history=hist)
        rec = run.svc.recorder
        run.until(lambda: rec.written_total >= 5, what="rows written")
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE datname = %s AND pid <> pg_backend_pid()", (pg_database,)).fetchone()[0]
        assert killed >= 1
        before = rec.written_total
        # A failed batch stays pending: step the clock without settle()'s "nothing pending".
        for _ in range(200):
            if rec.written_total >= before + 10:
                break
            run.clock.advance(0.5)
            time.sleep(0.02)
        assert rec.written_total >= before + 10, "writes did not resume"
        run.stop()
        assert "will retry" in caplog.text  # a batch really failed and was written later
        check = open_history(url)
        try:
            assert check.count("api") == run.svc.checks_total == rec.written_total
        finally:
            check.close()
    finally:
        hist.close()


def test_every_url_is_checked_and_recorded_on_its_own(tmp_path, backend, run_pulse):
    """Heartbeat writes one event per URL: a monitor with two URLs, one of them down, records
    both results (and the check is down, naming the bad one)."""
    dead = "http://127.0.0.1:9/gone"
    write_monitors(tmp_path / "conf" / "a.yml",
                   f"- type: http\n  id: two\n  urls: ['{dead}', '{backend.url}/ok']\n  schedule: '@every 1s'\n"
                   "  timeout: 1s\n")
    run = run_pulse(tmp_path / "conf")
    run.until(lambda: run.svc.states["two"].checks >= 2, what="checks")
    run.flush()
    assert backend.hits >= 2  # the good URL is checked although the first one failed
    rows = run.svc.history.recent_targets("two", limit=4)
    by_target = {r["target"]: r for r in rows}
    assert by_target[dead]["ok"] is False and "connection failed" in by_target[dead]["error"]
    assert by_target[f"{backend.url}/ok"]["ok"] is True and by_target[f"{backend.url}/ok"]["status"] == 200
    [last] = run.svc.history.recent("two", limit=1)
    assert last["ok"] is False and last["error"].startswith(dead)
