"""With SLACK_BOT_TOKEN set, pulse's alerts go to Slack through jarvis (a fake Slack Web API on
127.0.0.1, the one thing a test may fake), to the monitor's channel."""

from __future__ import annotations

import json

from shipyard.settings import get_settings
from tests.fakes.slack import TOKEN, FakeSlack, fake_slack  # noqa: F401  (fixture)
from tests.pulse.conftest import write_monitors


def test_alerts_reach_the_monitor_channel_in_slack(tmp_path, monkeypatch, backend, run_pulse, fake_slack: FakeSlack):
    fake_slack.add_channel("team-api")
    fake_slack.add_channel("pulse-alerts")
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SHIPYARD_SLACK_BASE_URL", fake_slack.base_url)
    write_monitors(tmp_path / "conf" / "a.yml",
                   f"- type: http\n  id: api\n  name: Checkout API\n  urls: ['{backend.url}/']\n"
                   "  schedule: '@every 1s'\n  alert: {channel: team-api, failure_threshold: 2, success_threshold: 1}\n")
    backend.mode = "fail"
    run = run_pulse(tmp_path / "conf", settings=get_settings(fresh=True))
    run.until(lambda: fake_slack.messages_in("team-api"), what="down message in Slack")
    backend.mode = "ok"
    run.until(lambda: len(fake_slack.messages_in("team-api")) >= 2, what="resolved message in Slack")
    run.stop()
    texts = [str(m) for m in fake_slack.messages_in("team-api")]
    assert len(texts) == 2
    assert "Checkout API is down" in texts[0] and "status 500" in texts[0]
    assert "Checkout API is back up" in texts[1]
    assert fake_slack.messages_in("pulse-alerts") == []


def test_slack_refusing_a_notice_does_not_stop_monitoring(tmp_path, monkeypatch, backend, run_pulse,
                                                            fake_slack: FakeSlack):
    """A channel Slack does not know: the notice is kept in the outbox, checks go on."""
    fake_slack.add_channel("pulse-alerts")
    fake_slack.add_channel("jarvis-error-notifications")
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SHIPYARD_SLACK_BASE_URL", fake_slack.base_url)
    monkeypatch.setenv("SHIPYARD_JARVIS__RETRY_BACKOFF", "0.01")
    write_monitors(tmp_path / "conf" / "a.yml",
                   f"- type: http\n  id: api\n  urls: ['{backend.url}/']\n  schedule: '@every 1s'\n"
                   "  alert: {channel: no-such-channel, failure_threshold: 1}\n")
    backend.mode = "fail"
    run = run_pulse(tmp_path / "conf", settings=get_settings(fresh=True))
    run.until(lambda: (tmp_path / "outbox.jsonl").exists(), what="notice kept in the outbox")
    checks = run.svc.states["api"].checks
    run.until(lambda: run.svc.states["api"].checks > checks + 3, what="checks go on")
    [kept] = [json.loads(x) for x in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert kept["title"] == "api is down" and kept["channel"] == "no-such-channel"
