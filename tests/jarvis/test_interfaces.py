"""The thin clients: Lambda handler, HTTP endpoint, CLI (in-process and a real subprocess)."""

import json
import os
import subprocess

import httpx
import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.errors import ConfigError
from shipyard.jarvis.aws import handler
from shipyard.jarvis.http import SECRET_HEADER, create_app
from shipyard.settings import get_settings
from tests.conftest import REPO
from tests.fakes.slack import TOKEN
from tests.jarvis.conftest import jarvis_serve
from tests.helpers import read_outbox

BLOG = {"heading": "Heading", "message": "Message", "slack_channel": "data-team"}



# -- Lambda --------------------------------------------------------------------------------

def test_lambda_takes_the_payload_as_the_event(slack):
    r = handler(dict(BLOG), None)
    (msg,) = slack.messages_in("data-team")
    assert r == {"ok": True, "channel": "data-team", "channel_id": msg["channel"], "ts": msg["ts"]}
    assert handler(json.dumps(BLOG), None)["ok"] is True  # a JSON string event works too


def test_lambda_returns_a_structured_error_and_reports_it(slack, tmp_path, monkeypatch):
    (tmp_path / "f").mkdir()
    monkeypatch.setenv("SHIPYARD_JARVIS__ATTACHMENT_ROOTS", f'["{tmp_path}"]')
    get_settings(fresh=True)
    r = handler({**BLOG, "attachment": {"bucket": str(tmp_path / "f"), "key": "testing/test_file.csv"}}, None)
    assert r["ok"] is False and r["error"] == "attachment_not_found" and r["hint"]
    assert r["reported_to"] == "error_channel"
    r = handler({"message": "m"}, None)
    assert r["error"] == "invalid_payload" and "'slack_channel' is required" in r["message"]
    assert len(slack.messages_in("jarvis-error-notifications")) == 2


def test_lambda_without_a_token_refuses_rather_than_losing_the_notice():
    r = handler(dict(BLOG), None)
    assert r["ok"] is False and r["error"] == "not_configured" and "SLACK_BOT_TOKEN" in r["hint"]


# -- HTTP ----------------------------------------------------------------------------------

@pytest.fixture
def http(slack, monkeypatch, uvicorn_server):
    """The endpoint on a real uvicorn server (in a thread, on a free port); an httpx client to it."""
    monkeypatch.setenv("SHIPYARD_JARVIS__HTTP_SECRET", "s3cret")
    with httpx.Client(base_url=uvicorn_server(create_app(get_settings(fresh=True))), timeout=30) as client:
        yield client


def test_http_notify_with_the_secret(http, slack):
    assert http.get("/healthz").json() == {"ok": True, "delivery": "slack",
                                           "error_channel": "jarvis-error-notifications"}
    r = http.post("/notify", json=BLOG, headers={SECRET_HEADER: "s3cret"})
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["ts"]
    assert len(slack.messages_in("data-team")) == 1


def test_http_concurrent_requests_share_one_channel_lookup(http, slack):
    from concurrent.futures import ThreadPoolExecutor

    def post(i):
        return http.post("/notify", json={**BLOG, "message": f"n{i}"}, headers={SECRET_HEADER: "s3cret"})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(24)))
    assert [r.status_code for r in responses] == [200] * 24
    assert sorted(m["text"] for m in slack.messages_in("data-team")) == sorted(f"Heading\nn{i}" for i in range(24))
    assert len(slack.calls_to("users.conversations")) == 1


def test_http_refuses_a_wrong_or_missing_secret(http, slack):
    for headers in ({}, {SECRET_HEADER: "nope"}):
        r = http.post("/notify", json=BLOG, headers=headers)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert slack.messages == []


@pytest.mark.parametrize("body, status, error", [
    (b"{not json", 400, "invalid_payload"),
    (json.dumps({"message": "m", "slack_channel": "ghost-town"}).encode(), 404, "channel_not_found"),
    (json.dumps({"message": "m", "slack_channel": "data team"}).encode(), 400, "invalid_payload"),
])
def test_http_errors_are_structured_and_reported(http, slack, body, status, error):
    r = http.post("/notify", content=body, headers={SECRET_HEADER: "s3cret", "Content-Type": "application/json"})
    assert r.status_code == status and r.json()["error"] == error and r.json()["hint"]
    (report,) = slack.messages_in("jarvis-error-notifications")
    if body.startswith(b"{\""):  # the report names the caller's channel even for a bad field
        assert "#" + json.loads(body)["slack_channel"] in report["text"]


def test_http_slack_down_is_503(http, slack):
    slack.fail("users.conversations", status=500, times=100)
    r = http.post("/notify", json=BLOG, headers={SECRET_HEADER: "s3cret"})
    assert r.status_code == 503 and r.json()["retryable"] is True


def test_http_needs_a_secret_configured(slack):
    with pytest.raises(ConfigError) as e:
        create_app(get_settings())
    assert "SHIPYARD_JARVIS__HTTP_SECRET" in e.value.hint


@pytest.mark.slow  # a real subprocess or a big stream: seconds, not milliseconds
def test_serve_runs_a_real_server(slack, tmp_path):
    with jarvis_serve(tmp_path) as (_, url):
        r = httpx.post(url + "/notify", json=BLOG, headers={SECRET_HEADER: "s3cret"}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["ts"] == slack.messages_in("data-team")[0]["ts"]
        r = httpx.post(url + "/notify", content=b"[]", headers={SECRET_HEADER: "s3cret"}, timeout=30)
        assert r.status_code == 400
        assert httpx.get(url + "/healthz").json()["ok"] is True  # still serving after a bad input


# -- CLI -----------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_send_with_a_token(slack, tmp_path):
    (tmp_path / "report.csv").write_text("a,b\n")
    r = runner.invoke(app, ["jarvis", "send", "-c", "data-team", "-m", "<!here> done", "-H", "ETL",
                            "--attach", "report.csv"])
    assert r.exit_code == 0, r.output
    (msg,) = slack.messages_in("data-team")
    assert "sent to #data-team" in r.output and msg["ts"] in r.output
    assert msg["blocks"][1]["text"]["text"] == "<!here> done"
    assert list(slack.files.values())[0]["data"] == b"a,b\n"


def test_cli_send_payload_file_and_stdin(slack, tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(BLOG))
    r = runner.invoke(app, ["jarvis", "send", "--payload", "p.json", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ok"] is True
    r = runner.invoke(app, ["jarvis", "send", "--payload", "-"], input=json.dumps({**BLOG, "message": "stdin"}))
    assert r.exit_code == 0, r.output
    assert [m["text"] for m in slack.messages_in("data-team")] == ["Heading\nMessage", "Heading\nstdin"]


def test_cli_send_without_a_token_writes_the_outbox_and_says_so(tmp_path):
    r = runner.invoke(app, ["jarvis", "send", "-c", "data-team", "-m", "hello"])
    assert r.exit_code == 0, r.output
    assert "SLACK_BOT_TOKEN is not set" in r.output and "outbox.jsonl" in r.output
    assert read_outbox()[0]["message"] == "hello"


def test_cli_failures_exit_non_zero_with_the_fix(slack, tmp_path):
    r = runner.invoke(app, ["jarvis", "send", "-c", "ghost-town", "-m", "m"])
    assert r.exit_code == 2 and "no channel #ghost-town" in r.output and "fix:" in r.output
    assert "reported to #jarvis-error-notifications" in r.output
    r = runner.invoke(app, ["jarvis", "send", "-c", "data-team", "-m", "m", "--attach", "./missing.csv"])
    assert r.exit_code == 2 and "no such file" in r.output
    r = runner.invoke(app, ["jarvis", "send", "--payload", "p.json", "-c", "x"])
    assert r.exit_code == 2 and "cannot be combined" in r.output
    r = runner.invoke(app, ["jarvis", "send", "-c", "data-team"])
    assert r.exit_code == 2 and "--message are required" in r.output
    slack.fail("chat.postMessage", status=500, times=3)
    r = runner.invoke(app, ["jarvis", "send", "-c", "data-team", "-m", "m", "--json"])
    assert r.exit_code == 3 and json.loads(r.stdout)["error"] == "http_500"
    assert "Traceback" not in r.output


def test_cli_serve_without_a_secret_explains(slack):
    r = runner.invoke(app, ["jarvis", "serve"])
    assert r.exit_code == 2 and "SHIPYARD_JARVIS__HTTP_SECRET" in r.output


def test_cli_channels_lists_where_the_bot_can_post(slack, monkeypatch):
    slack.add_channel("not-mine", member=False)
    r = runner.invoke(app, ["jarvis", "channels"])
    assert r.exit_code == 0, r.output
    assert "#data-team" in r.output and "#not-mine" not in r.output
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    get_settings(fresh=True)
    r = runner.invoke(app, ["jarvis", "channels"])
    assert r.exit_code == 2 and "SLACK_BOT_TOKEN is not set" in r.output


@pytest.mark.slow  # a real subprocess or a big stream: seconds, not milliseconds
def test_shipyard_jarvis_send_as_a_real_process(slack, tmp_path):
    env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN, "SHIPYARD_SLACK_BASE_URL": slack.base_url}
    (tmp_path / "data.csv").write_bytes(b"x,y\n1,2\n")
    r = subprocess.run([str(REPO / ".venv/bin/shipyard"), "jarvis", "send", "--channel", "data-team",
                        "--message", "<@UNKDY50FH> from a subprocess ✓", "--attach", "data.csv"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (msg,) = slack.messages_in("data-team")
    assert msg["text"] == "<@UNKDY50FH> from a subprocess ✓"
    assert list(slack.files.values())[0]["data"] == b"x,y\n1,2\n"
    r = subprocess.run([str(REPO / ".venv/bin/shipyard"), "jarvis", "send", "--channel", "nope", "--message", "m"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "fix:" in r.stderr and "Traceback" not in r.stderr


# -- examples ------------------------------------------------------------------------------

def test_example_payloads_are_valid():
    from shipyard.jarvis import parse_payload

    files = sorted((REPO / "examples" / "jarvis").glob("*.json"))
    assert len(files) >= 3
    for f in files:
        parse_payload(f.read_bytes())


def test_example_curl_script_against_the_endpoint(http, slack):
    env = {**os.environ, "JARVIS_URL": str(http.base_url).rstrip("/"), "JARVIS_SECRET": "s3cret"}
    r = subprocess.run(["bash", str(REPO / "examples/jarvis/notify.sh"), str(REPO / "examples/jarvis/payload.json")],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True
    (msg,) = slack.messages_in("data-loader-notification")
    assert msg["blocks"][0]["text"]["text"] == "Nightly load finished"
