"""`${VAR}` / `${VAR:default}` expansion as Heartbeat does it, and expanded secrets kept out of
the page, the API, /metrics, history and notices (issue 18, item 4)."""

from __future__ import annotations


import pytest

from shipyard.pulse.config import parse_text
from shipyard.pulse.model import ConfigProblem
from tests.helpers import free_port
from tests.pulse.conftest import everything_shown, write_monitors

TOKEN = "tok-7Hq2-secret"


def test_expansion_defaults_and_errors():
    env = {"SERVICE_HOST": "billing.internal", "EMPTY": ""}
    [m] = parse_text("- type: http\n  id: a\n  urls: ['http://${SERVICE_HOST}:${PORT:8080}/health']\n"
                     "  schedule: '@every ${EVERY:30s}'\n  check.request.headers: {X-Literal: '$${NOT_A_VAR}'}\n",
                     "a.yml", env=env)
    assert m.targets == ("http://billing.internal:8080/health",) and m.schedule.every == 30
    assert m.headers == (("X-Literal", "${NOT_A_VAR}"),)
    assert m.secrets == ()  # SERVICE_HOST is not a secret: the page shows the host
    with pytest.raises(ConfigProblem) as e:
        parse_text("- type: http\n  id: a\n  urls: ['http://h/']\n  schedule: '@every 1s'\n"
                   "  password: ${DB_PASSWORD}\n  username: u\n", "a.yml", env={})
    assert e.value.line == 5 and "DB_PASSWORD is not set" in e.value.message and "${DB_PASSWORD:" in e.value.hint


def test_expanded_secrets_never_leave(tmp_path, monkeypatch, backend, run_pulse, caplog):
    caplog.set_level("DEBUG")
    monkeypatch.setenv("PULSE_API_TOKEN", TOKEN)
    dead = free_port()
    write_monitors(tmp_path / "conf" / "a.yml",
                   f"- type: http\n  id: api\n  urls: ['{backend.url}/health?key=${{PULSE_API_TOKEN}}']\n"
                   "  schedule: '@every 1s'\n  check.request.headers: {Authorization: 'Token ${PULSE_API_TOKEN}'}\n"
                   f"- type: http\n  id: dead\n  urls: ['http://127.0.0.1:{dead}/${{PULSE_API_TOKEN}}/x']\n"
                   "  schedule: '@every 1s'\n  alert: {failure_threshold: 1}\n")
    run = run_pulse(tmp_path / "conf", port=free_port())
    run.until(lambda: run.svc.states["api"].checks >= 2 and run.svc.states["dead"].triggered, what="checks")
    run.flush()
    assert run.svc.states["api"].failures == 0
    assert TOKEN in run.svc.monitors["api"].targets[0]  # the check really uses it
    everything = everything_shown(run, caplog.text)
    assert "/health?key=***" in everything and "/***/x" in everything
    assert TOKEN not in everything
