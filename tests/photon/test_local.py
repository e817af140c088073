"""The local target end to end: HAProxy in front of real processes, real requests."""

from __future__ import annotations

import http.client
import json
import sys

import pytest

from shipyard.photon.clientloop import ClientLoop
from shipyard.photon.model import load
from shipyard.photon.runner import Photon
from tests.photon.conftest import outbox, ours, write

STRATEGIES = {
    "all_at_once": ({"type": "all_at_once"}, [100]),
    "blue_green": ({"type": "blue_green"}, [100]),
    "canary": ({"type": "canary", "percent": 10, "bake": "0.6s"}, [10, 100]),
    "linear": ({"type": "linear", "step_percent": 40, "step_bake": "0.4s"}, [40, 80, 100]),
}


def get(endpoint: str, path: str = "/") -> tuple[int, str]:
    host, _, port = endpoint.removeprefix("http://").rpartition(":")
    c = http.client.HTTPConnection(host, int(port), timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    return r.status, r.read().decode().strip()


def deploy(folder, version, steps=None, **kw):
    events = []
    photon = Photon(progress=events.append)
    out = photon.apply(load(write(folder, f"{version}.json", version=version, **kw)))
    if steps is not None:
        steps.extend(e["percent"] for e in events if e["kind"] == "step")
    return out


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_rolls_out_with_zero_failed_requests(local, name):
    strategy, expected_steps = STRATEGIES[name]
    first = deploy(local, "v1")
    assert first.status == "deployed" and get(first.endpoint) == (200, "v1 hello")
    loop = ClientLoop(first.endpoint, clients=2)
    loop.start()
    steps: list[int] = []
    second = deploy(local, "v2", steps, strategy=strategy)
    after = loop.total
    while loop.total < after + 20:  # a few requests once v2 is alone
        pass
    loop.stop()
    assert second.status == "deployed", second.reason
    assert second.endpoint == first.endpoint  # the endpoint is stable
    assert steps == expected_steps
    assert loop.failed == 0, loop.failures[:5]
    assert loop.bodies["v1"] > 0 and loop.bodies["v2"] > 0
    assert get(second.endpoint)[1] == "v2 hello"
    # Only the router and the live release are left running.
    assert sorted(ours(local).values()) == ["release:r2", "release:r2", "router"]  # supervisor + app
    notes = [n for n in outbox(local) if n["tool"] == "photon"]
    assert notes[-1]["level"] == "success" and first.endpoint in notes[-1]["message"]


def test_a_release_failing_30_percent_of_requests_is_rolled_back(local):
    first = deploy(local, "v1")
    loop = ClientLoop(first.endpoint, clients=2)
    loop.start()
    bad = deploy(local, "v2", strategy={"type": "canary", "percent": 20, "bake": "20s"}, vars={"FAIL_RATE": "0.3"})
    mid = loop.total
    while loop.total < mid + 50:
        pass
    loop.stop()
    assert bad.status == "rolled_back" and "error rate" in bad.reason
    # The old release kept serving: every request after the rollback was v1.
    assert get(first.endpoint) == (200, "v1 hello")
    assert loop.bodies["v2"] > 0 and loop.failed > 0  # the canary did take (and fail) requests
    note = outbox(local)[-1]
    assert note["level"] == "failure" and "rolled back" in note["title"] and "error rate" in note["message"]
    st = Photon().status("hello", "test")
    assert st["live"]["release"] == "r1" and st["history"][-1]["event"] == "rolled_back"
    assert sorted(ours(local).values()) == ["release:r1", "release:r1", "router"]


def test_a_release_failing_its_health_check_is_rolled_back_before_any_traffic(local):
    first = deploy(local, "v1")
    bad = deploy(local, "v2", vars={"HEALTH": "fail"},
                 container={"health": {"path": "/health", "start_timeout": "1.5s"}})
    assert bad.status == "rolled_back" and bad.reason == "not healthy after 1.5s: GET /health answered 503"
    assert get(first.endpoint) == (200, "v1 hello")
    crash = deploy(local, "v3", local={"command": ["python3", "-c", "raise SystemExit(3)"]})
    assert crash.status == "rolled_back" and "exited with code 3" in crash.reason
    assert get(first.endpoint) == (200, "v1 hello")


def test_same_file_twice_is_a_no_op_and_terminate_leaves_other_envs(local):
    a = deploy(local, "v1", env="alpha")
    b = deploy(local, "v1", env="beta")
    again = deploy(local, "v1", env="alpha")
    assert again.status == "unchanged" and again.release == "r1"
    before = ours(local)
    out = Photon().terminate("hello", "alpha")
    assert out.status == "terminated"
    assert not (local / ".shipyard/photon/hello/alpha").exists()
    left = ours(local)
    assert set(left) < set(before) and sorted(left.values()) == ["release:r1", "release:r1", "router"]
    assert get(b.endpoint) == (200, "v1 hello")
    with pytest.raises(OSError):
        get(a.endpoint)
    assert outbox(local)[-1]["title"] == "hello/alpha terminated"
    assert [r["env"] for r in Photon().ls()] == ["beta"]


def test_no_rollback_holds_then_rollback_and_promote_commands(local):
    first = deploy(local, "v1")
    held = Photon().apply(load(write(local, "v2.json", version="v2", vars={"HEALTH": "fail"},
                                     container={"health": {"path": "/health", "start_timeout": "1s"}})),
                          rollback=False)
    assert held.status == "held"
    st = Photon().status("hello", "test")
    assert st["rollout"]["phase"] == "failed" and st["live"]["release"] == "r1"
    assert len(ours(local)) == 5  # router + two releases kept for debugging
    out = Photon().operate("hello", "test", "rollback")
    assert out.status == "rolled_back" and len(ours(local)) == 3
    # Promote during a long canary, asked from "another terminal" (the control file).
    import threading

    result = {}
    t = threading.Thread(target=lambda: result.update(o=deploy(local, "v3", strategy={
        "type": "canary", "percent": 10, "bake": "60s"})))
    t.start()
    while not Photon().status("hello", "test")["rollout"] or \
            Photon().status("hello", "test")["rollout"]["phase"] != "bake":
        pass
    assert Photon().operate("hello", "test", "promote").status == "asked"
    t.join(timeout=20)
    assert result["o"].status == "deployed" and get(first.endpoint)[1] == "v3 hello"
    # rollback with no rollout in progress: back to the previous release (v1)
    back = Photon().operate("hello", "test", "rollback")
    assert back.status == "deployed" and back.version == "v1" and get(first.endpoint)[1] == "v1 hello"


def test_secrets_reach_the_process_but_no_output_state_log_or_notice(local, monkeypatch, capfd):
    monkeypatch.setenv("HELLO_API_KEY", "s3cr3t-value-9f8e7d")
    (local / "app.py").write_text(
        "import os, runpy, sys\n"
        "print('my key is', os.environ['API_KEY'], flush=True)\n"
        "sys.argv = ['app', '--port', sys.argv[1]]\n"
        "runpy.run_module('shipyard.photon.demo_app', run_name='__main__')\n")
    path = write(local, version="v1", local={"command": [sys.executable, "app.py", "${PORT}"]},
                 config={"vars": {"VERSION": "v1"}, "secrets": {"API_KEY": "env:HELLO_API_KEY"}})
    from typer.testing import CliRunner

    from shipyard.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["photon", "apply", "-f", str(path)])
    assert res.exit_code == 0, res.output
    status = runner.invoke(app, ["photon", "status", "-f", str(path), "--json"])
    logs = runner.invoke(app, ["photon", "logs", "-f", str(path)])
    plan = runner.invoke(app, ["photon", "plan", "-f", str(path)])
    assert "my key is ***" in logs.output  # the app printed it; the log masked it
    outputs = res.output + status.output + logs.output + plan.output + "".join(capfd.readouterr())
    assert "s3cr3t-value-9f8e7d" not in outputs
    for f in local.rglob("*"):
        if f.is_file() and not f.name.endswith(".sock"):
            assert b"s3cr3t-value-9f8e7d" not in f.read_bytes(), f
    pid = json.loads(status.output)["releases"][0]
    assert pid["status"] == "live"
    # ...but the process did get it (its own environment).
    from shipyard.photon.targets.local import procs

    app_pids = [p for p, r in ours(local).items() if r == "release:r1"]
    assert any(b"API_KEY=s3cr3t-value-9f8e7d" in open(f"/proc/{p}/environ", "rb").read() for p in app_pids)
    assert procs.alive(app_pids[0])
