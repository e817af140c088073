"""Pulse cannot be taken down, or made to leak, by its own config or a target (issue 10):
sync confinement and modes, URL credentials, schedule floor, YAML alias bombs, body cap,
backtracking regexes, SIGTERM while a check hangs."""

from __future__ import annotations

import base64
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from shipyard.pulse.config import ParseLimits, load_dir, parse_text
from shipyard.pulse.model import ConfigProblem
from shipyard.pulse.sync import sync
from tests.helpers import free_port, read_outbox, wait_for
from tests.pulse.conftest import everything_shown, write_monitors
from tests.pulse.test_checks import check

USER, PASSWORD = "monitor", "hunter2-Zq9"


class AuthHandler(BaseHTTPRequestHandler):
    """200 only with the right basic auth; /big streams an endless body."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            try:
                while True:  # endless: the monitor must stop reading, not us
                    self.wfile.write(b"x" * 65536)
            except OSError:
                return
        want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        ok = self.headers.get("Authorization") == want
        body = (b"a" * 40 + b"!") if self.path == "/backtrack" else b"fine"
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# ---- sync -----------------------------------------------------------------------------------

def test_sync_keeps_modes_and_never_follows_a_symlink_out_of_the_source(tmp_path):
    src = tmp_path / "repo"
    src.mkdir()
    (src / "a.yml").write_text("- {type: tcp, id: a, hosts: ['127.0.0.1:9'], schedule: '@every 1h'}\n")
    (src / "token.yml").write_text("# a file only its owner may read\n")
    os.chmod(src / "token.yml", 0o600)
    (src / "check.sh").write_text("#!/bin/sh\n")
    os.chmod(src / "check.sh", 0o750)
    secret = tmp_path / "outside" / "secret.yml"
    secret.parent.mkdir()
    secret.write_text("password: from-outside\n")
    (src / "leak.yml").symlink_to(secret)
    (src / "linked").symlink_to(secret.parent, target_is_directory=True)

    rep = sync(str(src), tmp_path / "monitors")
    out = tmp_path / "monitors"
    assert sorted(p.name for p in out.rglob("*")) == ["a.yml", "check.sh", "token.yml"], rep
    assert stat.S_IMODE((out / "token.yml").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "check.sh").stat().st_mode) == 0o750
    assert "from-outside" not in "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    # A mode change alone is a change, and makes a new version.
    os.chmod(src / "token.yml", 0o640)
    assert sync(str(src), out).changed and stat.S_IMODE((out / "token.yml").stat().st_mode) == 0o640


# ---- secrets in URLs ------------------------------------------------------------------------

def test_url_credentials_are_used_and_never_shown(tmp_path, http_server, run_pulse, caplog):
    caplog.set_level("DEBUG")
    srv = http_server(AuthHandler)
    port = srv.server_address[1]
    write_monitors(tmp_path / "conf" / "a.yml",
                   f"- type: http\n  id: good\n  urls: ['http://{USER}:{PASSWORD}@127.0.0.1:{port}/']\n"
                   "  schedule: '@every 1s'\n"
                   f"- type: http\n  id: bad\n  urls: ['http://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/x?token=abc123xyz']\n"
                   "  schedule: '@every 1s'\n  timeout: 500ms\n  alert: {failure_threshold: 1, reminder: 2s}\n")
    run = run_pulse(tmp_path / "conf", port=free_port())
    run.until(lambda: run.svc.states["good"].checks >= 2 and run.svc.states["bad"].triggered, what="checks")
    run.step(3.0, by=1.0)  # a reminder too
    run.flush()
    assert run.svc.states["good"].failures == 0  # the credentials were sent as basic auth

    everything = everything_shown(run, caplog.text, notices=2)  # down + a reminder
    assert f"127.0.0.1:{port}" in everything and "bad" in everything  # the targets are there...
    assert PASSWORD not in everything and "abc123xyz" not in everything  # ...their secrets are not
    assert f"{USER}:" not in everything


def test_a_malformed_url_with_credentials_is_not_echoed():
    for url in ("user:hunter2@host/x", "http//user:hunter2@host", "ftp://user:hunter2@host/"):
        with pytest.raises(ConfigProblem) as e:
            parse_text(f"- {{type: http, id: a, urls: ['{url}'], schedule: '@every 1s'}}\n", "a.yml")
        assert "hunter2" not in str(e.value) and "is not an http(s) URL" in str(e.value)


# ---- limits in the monitor file -------------------------------------------------------------

@pytest.mark.parametrize("schedule", ["@every 1ns", "@every 10ms", "@every 0.5s"])
def test_schedules_below_the_floor_are_refused(schedule, tmp_path, capsys):
    text = f"- {{type: tcp, id: a, hosts: ['127.0.0.1:9'], schedule: '{schedule}'}}\n"
    with pytest.raises(ConfigProblem, match="runs more often than every 1s"):
        parse_text(text, "a.yml")
    assert parse_text(text, "a.yml", ParseLimits(min_interval=0.000_000_001))  # the floor is a setting
    write_monitors(tmp_path / "m" / "a.yml", text)
    assert [p.line for p in load_dir(tmp_path / "m").problems] == [1]


def test_schedule_floor_holds_in_run(tmp_path, run_pulse):
    write_monitors(tmp_path / "conf" / "a.yml", "- {type: tcp, id: a, hosts: ['127.0.0.1:9'], schedule: '@every 1ns'}\n")
    run = run_pulse(tmp_path / "conf")
    assert run.svc.monitors == {} and "a.yml" in run.svc.reloader.problems
    [warn] = wait_for(read_outbox, what="the warning")
    assert "runs more often than every 1s" in warn["message"]


def test_yaml_alias_bomb_is_refused_quickly():
    # ~700 bytes that expand to 9^9 (387 M) nodes when flattened.
    lines = ["- type: tcp", "  id: a", "  hosts: ['127.0.0.1:9']", "  schedule: '@every 1h'",
             "  fields:", "    l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    text = "\n".join(lines) + "\n"
    assert len(text) < 800
    t0 = time.perf_counter()
    with pytest.raises(ConfigProblem, match="expands to more than 100,000 YAML nodes"):
        parse_text(text, "bomb.yml")
    assert time.perf_counter() - t0 < 1.0


def test_file_size_cap():
    with pytest.raises(ConfigProblem, match="larger than 1,000 bytes"):
        parse_text("#" * 2000, "big.yml", ParseLimits(max_file_bytes=1000))


# ---- what a target sends back ---------------------------------------------------------------

@pytest.mark.timeout(30)
def test_endless_body_is_read_up_to_the_cap(http_server):
    srv = http_server(AuthHandler)
    t0 = time.perf_counter()
    ok, _, status, err = check(f"- type: http\n  id: c\n  urls: ['{srv.url}/big']\n  schedule: '@every 1s'\n"
                               "  timeout: 10s\n  check.response.body: 'never there'\n")
    assert not ok and status == 200 and "in its first 1,048,576 bytes" in err
    assert time.perf_counter() - t0 < 5


@pytest.mark.timeout(30)
def test_backtracking_regex_cannot_freeze_the_loop(http_server):
    srv = http_server(AuthHandler)
    t0 = time.perf_counter()
    # With Python's re this pattern takes ~2^40 steps on 40 a's and a '!': hours.
    ok, _, _, err = check(f"- type: http\n  id: c\n  urls: ['http://{USER}:{PASSWORD}@{srv.url[7:]}/backtrack']\n"
                          "  schedule: '@every 1s'\n  check.response.body: '(a+)+$'\n")
    assert not ok and "body did not match" in err
    assert time.perf_counter() - t0 < 2


def test_regex_features_re2_lacks_are_refused_at_validate():
    with pytest.raises(ConfigProblem, match="RE2 syntax"):
        parse_text("- {type: http, id: c, urls: ['http://h/'], schedule: '@every 1s', "
                   "check.response.body: '(a)\\1'}\n", "c.yml")


# ---- SIGTERM --------------------------------------------------------------------------------

class Hang:
    """Accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(c)


@pytest.mark.slow  # a real process / a browser: seconds
def test_sigterm_stops_run_within_seconds_while_a_check_hangs(tmp_path):
    hang = Hang()
    conf = tmp_path / "conf"
    write_monitors(conf / "a.yml", f"- {{type: http, id: stuck, urls: ['http://127.0.0.1:{hang.port}/'], "
                                   "schedule: '@every 1s', timeout: 120s}\n")
    proc = subprocess.Popen([sys.executable, "-m", "shipyard.cli", "pulse", "run", "--config-dir", str(conf)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: hang.accepted, timeout=30, what="the check to connect and hang")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        hang.sock.close()
    assert took < 4.5, f"took {took:.1f}s to stop"
    assert proc.returncode == 0, proc.stderr.read()
