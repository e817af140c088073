"""jarvis as a hostile caller would use it: attachments out of bounds, special files, huge and
deeply nested bodies, a SIGTERM while a Slack call hangs."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import httpx
import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.jarvis import deliver, send
from shipyard.jarvis.aws import handler
from shipyard.jarvis.http import SECRET_HEADER, create_app
from shipyard.settings import get_settings
from tests.fakes.slack import TOKEN
from tests.jarvis.conftest import jarvis_serve
from tests.helpers import read_outbox

MSG = {"message": "m", "slack_channel": "data-team"}


def _roots(monkeypatch, *roots) -> None:
    monkeypatch.setenv("SHIPYARD_JARVIS__ATTACHMENT_ROOTS", "[" + ",".join(f'"{r}"' for r in roots) + "]")
    get_settings(fresh=True)


def _uploaded(slack) -> bytes:
    return b"".join(f["data"] for f in slack.files.values())


@pytest.mark.parametrize("bucket,key", [("/proc/self", "environ"), ("/etc", "passwd"), ("/", "etc/hostname"),
                                        ("../../../../proc/self", "environ"), ("~", ".bashrc")])
def test_lambda_and_http_payloads_cannot_name_local_files_by_default(slack, bucket, key):
    r = handler({**MSG, "attachment": {"bucket": bucket, "key": key}})
    assert r["ok"] is False and r["error"] == "attachment_not_allowed", r
    assert "ATTACHMENT_ROOTS" in r["hint"]
    assert slack.files == {} and slack.messages_in("data-team") == []
    assert TOKEN not in str(slack.messages_in("jarvis-error-notifications"))


def test_pseudo_filesystems_are_refused_even_under_a_configured_root(slack, monkeypatch):
    _roots(monkeypatch, "/")
    for bucket, key in (("/proc/self", "environ"), ("/sys/kernel", "hostname"), ("/dev", "zero")):
        r = deliver({**MSG, "attachment": {"bucket": bucket, "key": key}})
        assert r["error"] == "attachment_not_allowed", r
    assert slack.files == {}


def test_symlinks_out_of_a_root_are_refused(slack, tmp_path, monkeypatch):
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP-SECRET")
    (allowed / "leak.txt").symlink_to(outside / "secret.txt")
    (allowed / "env").symlink_to("/proc/self/environ")
    (allowed / "sub").symlink_to(outside, target_is_directory=True)
    (allowed / "ok.txt").write_text("fine")
    _roots(monkeypatch, allowed)
    for bucket, key in ((allowed, "leak.txt"), (allowed, "env"), (allowed / "sub", "secret.txt"),
                        (allowed, "sub/secret.txt")):
        r = deliver({**MSG, "attachment": {"bucket": str(bucket), "key": key}})
        assert r["ok"] is False and r["error"] in ("attachment_not_allowed", "attachment_not_found"), r
    assert b"TOP-SECRET" not in _uploaded(slack) and TOKEN.encode() not in _uploaded(slack)
    r = deliver({**MSG, "attachment": {"bucket": str(allowed), "key": "ok.txt"}})
    assert r["ok"] is True and _uploaded(slack) == b"fine"


def test_a_fifo_is_refused_at_once(slack, tmp_path, monkeypatch):
    os.mkfifo(tmp_path / "pipe.csv")
    _roots(monkeypatch, tmp_path)
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(r=deliver({**MSG, "attachment": {"bucket": str(tmp_path),
                                                                                     "key": "pipe.csv"}})),
                         daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "a FIFO attachment blocked jarvis"
    assert out["r"]["error"] == "attachment_not_allowed" and "FIFO" in out["r"]["message"]


def test_attachments_have_a_size_cap(slack, tmp_path, monkeypatch):
    (tmp_path / "big.bin").write_bytes(b"x" * 2048)
    monkeypatch.setenv("SHIPYARD_JARVIS__MAX_ATTACHMENT_BYTES", "1024")
    _roots(monkeypatch, tmp_path)
    r = deliver({**MSG, "attachment": {"bucket": str(tmp_path), "key": "big.bin"}})
    assert r["error"] == "attachment_too_large" and "MAX_ATTACHMENT_BYTES" in r["hint"]
    assert slack.messages_in("data-team") == []


def test_cli_attach_of_your_own_file_stays_easy_but_payload_files_are_confined(slack, tmp_path):
    (tmp_path / "report.csv").write_text("a,b\n")
    r = CliRunner().invoke(app, ["jarvis", "send", "-c", "data-team", "-m", "see", "--attach", "report.csv"])
    assert r.exit_code == 0, r.output
    assert _uploaded(slack) == b"a,b\n"
    (tmp_path / "p.json").write_text('{"message": "m", "slack_channel": "data-team", '
                                     '"attachment": {"bucket": "/proc/self", "key": "environ"}}')
    r = CliRunner().invoke(app, ["jarvis", "send", "--payload", "p.json", "--json"])
    assert r.exit_code == 2 and "attachment_not_allowed" in r.output


def test_library_callers_vouch_for_their_folders(slack, tmp_path):
    (tmp_path / "log.txt").write_text("boom")
    with pytest.raises(Exception) as e:
        send("x", "data-team", attachment=(str(tmp_path), "log.txt"))
    assert e.value.details["code"] == "attachment_not_allowed"
    r = send("x", "data-team", attachment=(str(tmp_path), "log.txt"), local_roots=[tmp_path])
    assert r.file_id


# -- HTTP --------------------------------------------------------------------------------------

@pytest.fixture
def http(slack, monkeypatch, uvicorn_server):
    monkeypatch.setenv("SHIPYARD_JARVIS__HTTP_SECRET", "s3cret")
    with httpx.Client(base_url=uvicorn_server(create_app(get_settings(fresh=True))), timeout=60,
                      headers={SECRET_HEADER: "s3cret"}) as client:
        yield client


def test_a_300mb_body_gets_413_without_being_buffered(http):
    sent = [0]

    def body():
        chunk = b"x" * (1 << 20)
        for _ in range(300):
            sent[0] += len(chunk)
            yield chunk

    t0 = time.monotonic()
    try:  # chunked: no Content-Length to refuse up front, the limit applies while reading
        r = http.post("/notify", content=body())
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    except httpx.TransportError:
        pass  # the server answered 413 and closed while we were still sending: also refused
    assert sent[0] < 64 * (1 << 20), f"the server read {sent[0] >> 20} MB before refusing"
    assert time.monotonic() - t0 < 20
    r = http.post("/notify", json={**MSG, "message": "y" * 1_100_000})  # Content-Length over the limit
    assert r.status_code == 413
    assert http.get("/healthz").status_code == 200


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
                                  b'{"message": ' + b"[" * 5000 + b"]" * 5000 + b', "slack_channel": "data-team"}'])
def test_deeply_nested_json_gets_the_structured_400(http, body):
    r = http.post("/notify", content=body)
    assert r.status_code == 400, r.text
    assert r.json()["ok"] is False and r.json()["error"] == "invalid_payload"
    assert "nests deeper" in r.json()["message"]


def test_deeply_nested_lambda_event_is_a_payload_error(slack):
    event: dict = {"message": "m", "slack_channel": "data-team"}
    node = event["extra"] = {}
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    r = handler(event)
    assert r["ok"] is False and r["error"] == "invalid_payload"


# -- SIGTERM -----------------------------------------------------------------------------------

@pytest.mark.slow  # a real subprocess or a big stream: seconds, not milliseconds
def test_serve_stops_within_seconds_on_sigterm_while_slack_hangs(tmp_path):
    # A "Slack" that accepts connections and never answers: the request would sit on its timeout.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    env = {"SLACK_BOT_TOKEN": TOKEN, "SHIPYARD_SLACK_BASE_URL": f"http://127.0.0.1:{hole.getsockname()[1]}/api/",
           "SHIPYARD_JARVIS__TIMEOUT": "60"}
    try:
        with jarvis_serve(tmp_path, **env) as (proc, url):
            answers: list = []
            caller = threading.Thread(target=lambda: answers.append(_post_quietly(url)), daemon=True)
            caller.start()
            time.sleep(1.0)  # the request is now inside the hanging Slack call
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
            assert time.monotonic() - t0 < 8, f"jarvis serve took {time.monotonic() - t0:.1f}s to stop"
            caller.join(10)
            # The caller is told to retry (or, at worst, sees the connection close); no traceback.
            assert answers and answers[0] in (503, None), answers
            assert "Traceback" not in proc.stderr.read().decode()
    finally:
        hole.close()


def _post_quietly(url: str) -> int | None:
    try:
        return httpx.post(url + "/notify", json=MSG, headers={SECRET_HEADER: "s3cret"}, timeout=120).status_code
    except httpx.HTTPError:
        return None


def test_outbox_is_untouched_by_refused_attachments(slack):
    handler({**MSG, "attachment": {"bucket": "/proc/self", "key": "environ"}})
    assert TOKEN not in str(read_outbox())
