"""jarvis test fixtures: the fake Slack server, wired into settings the way a user would."""

from __future__ import annotations

import pytest

from tests.fakes.slack import TOKEN, FakeSlack, fake_slack  # noqa: F401  (fake_slack is a fixture)


@pytest.fixture
def slack(fake_slack: FakeSlack, monkeypatch) -> FakeSlack:
    """The fake Slack with the usual channels, and SLACK_BOT_TOKEN / SHIPYARD_SLACK_BASE_URL set.

    Retries back off 10 ms instead of 0.5 s so the 5xx tests stay fast; Retry-After is what the
    fake says (1 s)."""
    fake_slack.add_channel("data-team")
    fake_slack.add_channel("jarvis-error-notifications")
    fake_slack.add_channel("data-loader-notification")
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SHIPYARD_SLACK_BASE_URL", fake_slack.base_url)
    monkeypatch.setenv("SHIPYARD_JARVIS__RETRY_BACKOFF", "0.01")
    monkeypatch.setenv("SHIPYARD_JARVIS__TIMEOUT", "10")
    from shipyard.settings import get_settings

    get_settings(fresh=True)
    return fake_slack
