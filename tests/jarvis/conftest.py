"""jarvis test fixtures: the fake Slack server, wired into settings the way a user would."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.conftest import REPO
from tests.fakes.slack import TOKEN, FakeSlack, fake_slack  # noqa: F401  (fake_slack is a fixture)
from tests.helpers import free_port, wait_for


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


@contextmanager
def jarvis_serve(cwd: Path, **env: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`shipyard jarvis serve` as a real process on a free port, once /healthz answers; yields
    (process, base URL) and stops it at the end."""
    port = free_port()
    proc = subprocess.Popen([str(REPO / ".venv/bin/shipyard"), "jarvis", "serve", "--port", str(port)],
                            env={**os.environ, "SHIPYARD_JARVIS__HTTP_SECRET": "s3cret", **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/healthz").status_code == 200
        except httpx.TransportError:
            return proc.poll() is not None  # it died: stop waiting, the test says why

    try:
        wait_for(up, 20, what="jarvis serve to answer")
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "jarvis serve exited"
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
