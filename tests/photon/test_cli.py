"""The commands as a user runs them: the `photon` script, SIGKILL and reconcile, bad files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shipyard.photon.runner import Photon
from shipyard.photon.state import EnvDir
from tests.photon.conftest import ours, write

PHOTON = str(Path(sys.executable).parent / "photon")
SHIPYARD = str(Path(sys.executable).parent / "shipyard")


def run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SHIPYARD_PHOTON__TICK": "0.1"}
    res = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_the_photon_script_creates_updates_and_terminates(local):
    path = write(local)
    res = run(PHOTON, "--file", str(path), cwd=local)
    assert "deployed hello/test r1 (v1): http://127.0.0.1:" in res.stdout
    again = run(PHOTON, "--file", str(path), "--json", cwd=local)
    assert json.loads(again.stdout)["status"] == "unchanged"
    ls = run(SHIPYARD, "photon", "ls", "--json", cwd=local)
    assert [(r["service"], r["env"], r["version"]) for r in json.loads(ls.stdout)] == [("hello", "test", "v1")]
    gone = run(PHOTON, "--file", str(path), "--terminate", cwd=local)
    assert "terminated hello/test" in gone.stdout and not ours(local)


def test_a_bad_file_is_one_clear_error_and_nothing_starts(local):
    path = write(local)
    doc = json.loads(path.read_text())
    doc["deploy"]["strategy"] = {"type": "canary", "percnt": 10}
    path.write_text(json.dumps(doc))
    res = run(PHOTON, "-f", str(path), cwd=local, check=False)
    assert res.returncode == 2
    assert "deploy.strategy.percnt: unknown field" in res.stderr and "did you mean 'percent'?" in res.stderr
    assert "Traceback" not in res.stderr and not (local / ".shipyard").exists()
    missing = write(local, config={"secrets": {"API_KEY": "env:NOT_SET_ANYWHERE"}})
    res = run(SHIPYARD, "photon", "apply", "-f", str(missing), cwd=local, check=False)
    assert res.returncode == 2 and "config.secrets.API_KEY (env:NOT_SET_ANYWHERE) is not set" in res.stderr
    assert not ours(local)


def test_sigkill_of_photon_mid_rollout_is_reconciled_by_the_next_command(local):
    path = write(local, version="v1")
    run(PHOTON, "-f", str(path), cwd=local)
    before = ours(local)
    slow = write(local, "v2.json", version="v2", strategy={"type": "canary", "percent": 50, "bake": "60s"})
    proc = subprocess.Popen([PHOTON, "-f", str(slow)], cwd=local, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "SHIPYARD_PHOTON__TICK": "0.1"})
    d = EnvDir((local / ".shipyard/photon").resolve(), "hello", "test")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = d.load()
        if st.rollout and st.rollout["state"]["phase"] == "bake":
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the rollout never reached its bake")
    assert len(ours(local)) == 5  # router, r1 and r2 (supervisor + app each)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(ours(local)) == 5  # the kill leaves r2 behind ...
    status = run(SHIPYARD, "photon", "status", "-f", str(path), "--json", cwd=local)
    s = json.loads(status.stdout)
    # ... and the next command rolls it back: r1 serves alone, r2's processes are gone.
    assert s["live"]["release"] == "r1" and s["rollout"] is None
    assert s["history"][-1]["event"] == "rolled_back" and "interrupted" in s["history"][-1]["reason"]
    assert ours(local) == before
    assert [r["status"] for r in s["releases"]] == ["live", "failed"]


def test_a_router_that_died_is_restarted_and_orphans_are_stopped(local):
    path = write(local)
    out = Photon().apply(__import__("shipyard.photon.model", fromlist=["load"]).load(path))
    router = [p for p, r in ours(local).items() if r == "router"]
    os.kill(router[0], signal.SIGKILL)
    # An orphan: a process tagged for this env that the state does not know.
    owner = f"{(local / '.shipyard/photon').resolve()}|hello|test"
    orphan = subprocess.Popen(["sleep", "60"], env={**os.environ, "PHOTON_OWNER": owner, "PHOTON_ROLE": "release:r9"},
                              start_new_session=True)
    run(SHIPYARD, "photon", "status", "-f", str(path), cwd=local)
    assert orphan.wait(timeout=5) == -signal.SIGTERM
    roles = sorted(ours(local).values())
    assert roles == ["release:r1", "release:r1", "router"]
    from tests.photon.test_local import get

    assert get(out.endpoint) == (200, "v1 hello")


def test_sigterm_during_a_rollout_rolls_back_before_photon_exits(local):
    path = write(local, version="v1")
    run(PHOTON, "-f", str(path), cwd=local)
    before = ours(local)
    slow = write(local, "v2.json", version="v2", strategy={"type": "canary", "percent": 50, "bake": "60s"})
    proc = subprocess.Popen([PHOTON, "-f", str(slow)], cwd=local, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "SHIPYARD_PHOTON__TICK": "0.1"})
    d = EnvDir((local / ".shipyard/photon").resolve(), "hello", "test")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (d.load().rollout and d.load().rollout["state"]["phase"] == "bake"):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    st = d.load()  # no reconcile needed: photon rolled back itself
    assert st.rollout is None and st.live == "r1" and st.history[-1]["event"] == "rolled_back"
    assert "interrupted" in st.history[-1]["reason"] and "Traceback" not in err
    assert ours(local) == before
