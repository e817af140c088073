"""`shipyard pulse ...` end to end: validate, sync, run (a real process, stopped by SIGTERM), status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from shipyard.cli import main
from tests.conftest import REPO
from tests.helpers import free_port
from tests.helpers import wait_for
from tests.pulse.conftest import write_monitors


def cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    # rich wraps at the terminal width; compare text, not line breaks.
    return code, out.out, " ".join(out.err.split())


@pytest.mark.parametrize("cmd", [[], ["run"], ["validate"], ["sync"], ["status"]])
def test_help(capsys, cmd):
    code, out, _ = cli(capsys, "pulse", *cmd, "--help")
    assert code == 0 and "Usage" in out


def test_validate(capsys, tmp_path):
    code, out, _ = cli(capsys, "pulse", "validate", str(REPO / "examples" / "pulse" / "monitors"))
    assert code == 0 and "4 monitors valid" in out
    write_monitors(tmp_path / "m" / "bad.yml", "- type: http\n  id: x\n  urls: ['http://h/']\n  schedule: '@every 1s'\n"
                   "  alert:\n    failure_treshold: 2\n")
    code, _, err = cli(capsys, "pulse", "validate", str(tmp_path / "m"))
    assert code == 2
    assert "bad.yml:6" in err and "alert.failure_treshold" in err and "did you mean 'alert.failure_threshold'" in err
    assert "1 invalid monitor file(s)" in err and "Traceback" not in err
    code, _, err = cli(capsys, "pulse", "validate", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in err


def test_sync(capsys, tmp_path):
    src = tmp_path / "repo"
    write_monitors(src / "a.yml", "- {type: tcp, id: a, hosts: ['127.0.0.1:9'], schedule: '@every 1h'}\n")
    code, out, _ = cli(capsys, "pulse", "sync", "--from", str(src), "--to", str(tmp_path / "monitors"))
    assert code == 0 and "a.yml" in out and "added" in out
    code, out, _ = cli(capsys, "pulse", "sync", "--from", str(src), "--to", str(tmp_path / "monitors"))
    assert code == 0 and "up to date" in out
    code, _, err = cli(capsys, "pulse", "sync", "--from", str(tmp_path / "nope"), "--to", str(tmp_path / "monitors"))
    assert code == 2 and "does not exist" in err


@pytest.mark.slow  # a real process / a browser: seconds
def test_run_process_serves_and_stops_cleanly(tmp_path, backend):
    conf = tmp_path / "conf"
    write_monitors(conf / "a.yml", f"- {{type: http, id: api, urls: ['{backend.url}/'], schedule: '@every 100ms'}}\n")
    port = free_port()
    env = {**os.environ, "SHIPYARD_PULSE__MIN_INTERVAL": "0.1"}
    proc = subprocess.Popen([sys.executable, "-m", "shipyard.cli", "pulse", "run", "--config-dir", str(conf),
                             "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def health():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).json()
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read()
                return None

        wait_for(lambda: (h := health()) and h["checks_total"] >= 3, timeout=20, what="checks via the CLI")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "1 monitors" in err and "status page" in err
    # The history it wrote is readable by `shipyard pulse status`, from the same folder.
    res = subprocess.run([sys.executable, "-m", "shipyard.cli", "pulse", "status"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "api" in res.stdout and "100.00%" in res.stdout


def test_run_rejects_missing_dir(capsys, tmp_path):
    code, _, err = cli(capsys, "pulse", "run", "--config-dir", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in err and "pulse sync" in err


def test_status_without_history(capsys):
    code, _, err = cli(capsys, "pulse", "status")
    assert code == 2 and "no pulse history here" in err


@pytest.mark.slow  # runs the service for 3 s of wall-clock time
def test_demo(capsys):
    code, out, _ = cli(capsys, "pulse", "demo", "--seconds", "3")
    assert code == 0 and "what pulse saw" in out
    for name in ("Checkout API", "Search", "Billing", "Nightly report"):
        assert name in out
    assert "Billing is down" in out
