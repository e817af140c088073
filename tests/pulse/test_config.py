"""Monitor files: Heartbeat's syntax, alerting options, and errors that name file and line."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shipyard.errors import ConfigError
from shipyard.pulse.config import load_dir, parse_text
from shipyard.pulse.model import ConfigProblem
from shipyard.pulse.schedule import parse_duration, parse_schedule
from tests.conftest import REPO


def problem(text: str, file: str = "svc.yml") -> ConfigProblem:
    with pytest.raises(ConfigProblem) as ei:
        parse_text(text, file)
    return ei.value


def test_examples_load():
    res = load_dir(REPO / "examples" / "pulse" / "monitors")
    assert res.problems == []
    assert set(res.monitors) == {"billing-api", "billing-web", "orders-postgres", "cache-redis"}
    api = res.monitors["billing-api"]
    assert api.type == "http" and api.schedule.every == 30 and api.timeout == 5
    assert api.status == (200,) and api.headers == (("Accept", "application/json"),)
    assert api.channel == "team-billing" and api.failure_threshold == 3 and api.reminder == 3600
    assert api.json_checks[0].op == "equals" and api.json_checks[0].path == "db"
    pg = res.monitors["orders-postgres"]
    assert pg.failure_threshold == 2 and pg.success_threshold == 2  # Gatus' dashed spelling
    redis = res.monitors["cache-redis"]
    assert redis.enabled is False and redis.targets == ("127.0.0.1:6379",)
    assert redis.send == "PING\r\n" and redis.receive == "+PONG"


def test_blog_sample_and_defaults():
    # The blog's sample file (with a URL filled in) is a valid monitor file.
    [m] = parse_text("- type: http\n  id: foo\n  name: bar\n  enabled: true\n"
                     "  urls: ['http://x:1/']\n  schedule: '@every 30s'\n", "foo.yml")
    assert (m.id, m.name, m.schedule.every, m.timeout) == ("foo", "bar", 30.0, 16.0)
    assert (m.failure_threshold, m.success_threshold, m.send_on_resolved, m.reminder) == (3, 2, True, None)
    assert m.channel is None and m.status == () and m.file == "foo.yml" and m.line == 1


def test_dotted_and_nested_keys_are_the_same():
    dotted = parse_text("- {type: http, id: a, urls: ['http://h/'], schedule: '@every 1s',"
                        " check.response.status: [201], check.request.method: post}", "a.yml")[0]
    nested = parse_text("- type: http\n  id: a\n  urls: ['http://h/']\n  schedule: '@every 1s'\n"
                        "  check:\n    request: {method: POST}\n    response:\n      status: [201]\n", "a.yml")[0]
    assert dotted.fingerprint() == nested.fingerprint()
    assert dotted.method == "POST" and dotted.status == (201,)


@pytest.mark.parametrize("text,line,needle,hint", [
    ("- type: http\n  name: x\n  urls: ['http://h/']\n  schedule: '@every 1s'\n", 1, "no 'id'", "unique id"),
    ("- type: http\n  id: a\n  urls: ['http://h/']\n  schedul: '@every 1s'\n", 4, "unknown key 'schedul'",
     "did you mean 'schedule'"),
    ("- type: http\n  id: a\n  urls: ['http://h/']\n  schedule: '@every 1s'\n"
     "- type: http\n  id: b\n  urls: ['http://h/']\n  schedule: '@every soon'\n", 8, "not a duration", None),
    ("- type: http\n  id: a\n  urls: ['http://h/']\n  schedule: '* * * *'\n", 4, "has 4 fields", None),
    ("- type: http\n  id: a\n  urls: [h]\n  schedule: '@every 1s'\n", 3, "not an http(s) URL", "full URL"),
    ("- type: tcp\n  id: a\n  hosts: [db]\n  schedule: '@every 1s'\n", 3, "has no port", "host:port"),
    ("- type: http\n  id: a\n  urls: ['http://h/']\n  schedule: '@every 1s'\n  check.response.status: [ok]\n",
     5, "list of HTTP status codes", None),
    ("- type: browser\n  id: a\n  hosts: [h]\n  schedule: '@every 1s'\n", 1, "type 'browser' is not supported", None),
    ("- type: http\n  id: a\n  urls: ['http://h/']\n  schedule: '@every 1s'\n  alert:\n    failure_threshold: 0\n",
     6, "failure_threshold must be", None),
    ("- type: http\n  id: a\n  urls: ['http://h/']\n  schedule: '@every 1s'\n  maintenance:\n"
     "    - {start: '25:00', duration: 1h}\n", 6, "not a time of day", "HH:MM"),
    ("- type: http\n  id: a\n  urls: ['http://h/']\n  schedule: '@every 1s'\n  maintenance:\n"
     "    - {start: '01:00', duration: 1h, timezone: Mars/Olympus}\n", 6, "unknown timezone", None),
    ("- type: http\n  id: a\n   urls: ['http://h/']\n", 3, "invalid YAML", None),
    ("- type: http\n  id: a\n  id: b\n", 3, "duplicate key 'id'", None),
    ("- type: http\n  id: a\n  urls: ['http://h/']\n  schedule: '@every 1s'\n"
     "- type: http\n  id: a\n  urls: ['http://h/']\n  schedule: '@every 1s'\n", 5, "duplicate monitor id 'a'", None),
    ("just a string\n", 1, "must hold a YAML list", None),
])
def test_errors_name_file_and_line(text, line, needle, hint):
    p = problem(text)
    assert p.file == "svc.yml" and p.line == line, str(p)
    assert needle in p.message, str(p)
    if hint:
        assert hint in (p.hint or ""), str(p)
    assert str(p).startswith(f"svc.yml:{line}: ")


def test_duplicate_id_across_files_names_both(tmp_path):
    (tmp_path / "a.yml").write_text("- {type: http, id: api, urls: ['http://h/'], schedule: '@every 1s'}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text(
        "# b\n- {type: http, id: other, urls: ['http://h/'], schedule: '@every 1s'}\n"
        "- {type: http, id: api, urls: ['http://h/'], schedule: '@every 1s'}\n")
    (tmp_path / "notes.txt").write_text("not a monitor file")
    res = load_dir(tmp_path)
    assert set(res.monitors) == {"api"}  # the later file is rejected whole
    [p] = res.problems
    assert p.where == "sub/b.yaml:3" and "already defined in a.yml:1" in p.message


def test_missing_dir_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_dir(tmp_path / "nope")


def test_durations():
    assert parse_duration("1m30s") == 90 and parse_duration("500ms") == 0.5 and parse_duration(2) == 2.0
    assert parse_duration("2h") == 7200
    for bad in ("", "5 minutes", "1d", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_every_schedule_does_not_drift_and_skips_missed_slots():
    s = parse_schedule("@every 10s")
    t0 = 1_000_000.0
    assert s.first(t0) == t0
    # Computed from the scheduled time, not from when the check ran (3.7 s late here).
    assert s.next_after(t0, now=t0 + 3.7) == t0 + 10
    # Far behind: the missed slots are skipped, the grid stays the same.
    assert s.next_after(t0, now=t0 + 35) == t0 + 40


def test_every_first_run_is_spread_by_id():
    s, hourly = parse_schedule("@every 10s"), parse_schedule("@every 1h")
    t0 = 1_000_000.0
    offsets = [s.first(t0, f"m{i}") - t0 for i in range(1000)]
    assert all(0 <= o < 10 for o in offsets)
    assert s.first(t0, "m1") - t0 == offsets[1]  # stable: same id, same offset
    # Spread over the interval: every second of it gets some monitors.
    assert {int(o) for o in offsets} == set(range(10))
    assert all(0 <= hourly.first(t0, f"m{i}") - t0 < 60 for i in range(100))  # at most a minute


def test_cron_with_seconds_in_heartbeat_field_order():
    base = datetime(2026, 11, 28, 10, 0, 1, tzinfo=timezone.utc).timestamp()
    every5 = parse_schedule("*/5 * * * * * *")  # sec min hour dom month dow year
    assert every5.first(base) == base + 4
    assert every5.next_after(base + 4, now=base + 4) == base + 9
    minute = parse_schedule("*/2 * * * *")  # 5 fields: second 0
    nxt = minute.first(base)
    assert nxt % 120 == 0 and nxt > base
    assert parse_schedule("0 * * * * *").cron == "0 * * * * 0"  # 6 fields: ... year
    with pytest.raises(ValueError, match="year field"):
        parse_schedule("0 0 * * * * 2027")
    with pytest.raises(ValueError, match="not a valid cron"):
        parse_schedule("99 * * * * * *")


def test_maintenance_windows():
    [m] = parse_text(
        "- type: http\n  id: a\n  urls: ['http://h/']\n  schedule: '@every 1s'\n  maintenance:\n"
        "    - {start: '23:30', duration: 1h, every: [Saturday], timezone: Europe/Berlin}\n"
        "    - {from: '2026-12-01T10:00:00Z', to: '2026-12-01T11:00:00Z'}\n", "a.yml")

    def ts(s: str) -> float:
        return datetime.fromisoformat(s).timestamp()

    # 2026-11-28 is a Saturday; Berlin is UTC+1 in November.
    assert m.in_maintenance(ts("2026-11-28T22:30:00+00:00"))       # 23:30 Berlin
    assert m.in_maintenance(ts("2026-11-28T23:29:59+00:00"))       # 00:29:59 Sunday: still Saturday's window
    assert not m.in_maintenance(ts("2026-11-28T23:30:00+00:00"))   # window over
    assert not m.in_maintenance(ts("2026-11-28T22:29:59+00:00"))
    assert not m.in_maintenance(ts("2026-11-27T22:45:00+00:00"))   # Friday
    assert m.in_maintenance(ts("2026-12-01T10:59:00+00:00"))
    assert not m.in_maintenance(ts("2026-12-01T11:00:00+00:00"))


def test_heartbeat_yml_forms():
    dotted = parse_text("heartbeat.monitors:\n- type: tcp\n  id: db\n  hosts: ['h:1']\n  schedule: '@every 5s'\n",
                        "heartbeat.yml")
    nested = parse_text("heartbeat:\n  monitors:\n    - {type: tcp, id: db, hosts: ['h:1'], schedule: '@every 5s'}\n",
                        "heartbeat.yml")
    single = parse_text("type: tcp\nid: db\nhosts: ['h:1']\nschedule: '@every 5s'\n", "one.yml")
    assert [m.id for m in dotted] == [m.id for m in nested] == [m.id for m in single] == ["db"]
    assert dotted[0].line == 2 and nested[0].line == 3


def test_ci_files_validate_then_publish():
    """The config repo's CI (CodeBuild and GitHub Actions): valid YAML, `pulse validate` before
    `pulse sync`, on the same folder the example's monitors live in."""
    import yaml

    build = yaml.safe_load((REPO / "examples" / "pulse" / "buildspec.yml").read_text())
    cmds = build["phases"]["build"]["commands"]
    assert cmds[0] == "shipyard pulse validate monitors" and cmds[1].startswith("shipyard pulse sync --from monitors --to")
    flow = yaml.safe_load((REPO / "examples" / "pulse" / ".github" / "workflows" / "pulse.yml").read_text())
    runs = [s["run"] for s in flow["jobs"]["validate-and-publish"]["steps"] if "run" in s]
    assert runs[1] == "shipyard pulse validate monitors" and runs[2].startswith("shipyard pulse sync --from monitors")
    assert load_dir(REPO / "examples" / "pulse" / "monitors").problems == []


def test_docs_option_table_is_the_options_table():
    """docs/pulse.md says, per Heartbeat option, what pulse.options.OPTIONS says (no drift)."""
    from shipyard.pulse.options import OPTIONS

    doc = (REPO / "docs" / "pulse.md").read_text()
    for key, (what, _) in OPTIONS.items():
        shown = key + "*" if key.endswith(".") else key
        assert f"| `{shown}` | {what} |" in doc, key
