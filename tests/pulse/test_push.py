"""Push monitors (a dead man's switch for crons): POST /api/push/<token>, `shipyard pulse ping`,
a missed ping alerts, constant-time token compare, rate limit (issue 18, item 5)."""

from __future__ import annotations

import httpx
import pytest

from shipyard.cli import main
from shipyard.pulse.config import parse_text
from shipyard.pulse.model import ConfigProblem
from shipyard.pulse.push import RateLimit, find
from tests.helpers import free_port, read_outbox, wait_for
from tests.pulse.conftest import pulse_settings, write_monitors

TOKEN = "backup-7f3a9c1e5b2d4a60"


def cli(capsys, *args):
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def pushed(tmp_path, run_pulse):
    write_monitors(tmp_path / "conf" / "cron.yml",
                   f"- type: push\n  id: nightly-backup\n  name: Nightly backup\n  token: {TOKEN}\n"
                   "  every: 10s\n  grace: 5s\n")
    return lambda **pulse: run_pulse(tmp_path / "conf", port=free_port(), settings=pulse_settings(**pulse))


def test_a_missed_ping_alerts_and_a_ping_resolves(pushed, capsys):
    run = pushed()
    base = f"http://127.0.0.1:{run.svc.port}"
    st = lambda: run.svc.states["nightly-backup"]  # noqa: E731
    r = httpx.post(f"{base}/api/push/{TOKEN}")
    assert r.status_code == 200 and r.json()["message"] == "ok: nightly-backup up"
    run.step(14.0, by=1.0)  # within every + grace: nothing
    assert not st().triggered and read_outbox() == []
    run.step(8.0, by=1.0)  # 22 s without a ping
    assert st().triggered
    [down] = wait_for(read_outbox, what="the missed-ping notice")
    assert down["title"] == "Nightly backup is down" and "no ping for 1" in down["message"]

    # `shipyard pulse ping TOKEN` is the cron's side.
    code, out, err = cli(capsys, "pulse", "ping", TOKEN, "--url", base)
    assert code == 0 and "ok: nightly-backup up" in out, err
    run.settle()
    assert not st().triggered
    notes = wait_for(lambda: x if len(x := read_outbox()) >= 2 else None, what="resolved")
    assert notes[1]["title"] == "Nightly backup is back up"

    # A cron that fails says so at once.
    code, out, _ = cli(capsys, "pulse", "ping", TOKEN, "--url", base, "--status", "down", "--msg", "disk full")
    assert code == 0 and st().triggered and st().last_error == "pushed down: disk full"
    page = httpx.get(base + "/").text + httpx.get(base + "/api/monitors").text + httpx.get(base + "/metrics").text
    assert TOKEN not in page and "nightly-backup" in page

    code, _, err = cli(capsys, "pulse", "ping", "wrong-token-0000000000", "--url", base)
    assert code == 2 and "push refused (404)" in err


def test_push_endpoint_is_rate_limited(pushed):
    run = pushed(push_rate_per_minute=5)
    with httpx.Client(base_url=f"http://127.0.0.1:{run.svc.port}") as c:
        codes = [c.post(f"/api/push/{TOKEN}").status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        # Guessing tokens is limited per client too.
        guesses = [c.post(f"/api/push/guess-{i:020d}").status_code for i in range(6)]
        assert guesses == [404] * 5 + [429]
        run.step(61.0, by=10.0)
        assert c.post(f"/api/push/{TOKEN}").status_code == 200


def test_token_rules_and_constant_time_compare():
    [m] = parse_text(f"- {{type: push, id: p, token: {TOKEN}, every: 1h}}\n", "p.yml")
    assert (m.push_every, m.grace, m.failure_threshold, m.targets) == (3600, 30, 1, ())
    assert TOKEN in m.secrets
    assert find(TOKEN, {"p": m}) is m and find(TOKEN[:-1] + "x", {"p": m}) is None and find("", {"p": m}) is None
    with pytest.raises(ConfigProblem, match="p.yml:1: a push monitor needs a token of 16-128"):
        parse_text("- {type: push, id: p, token: short, every: 1h}\n", "p.yml")
    with pytest.raises(ConfigProblem, match="p.yml:1: every '100ms' is shorter than 1s"):
        parse_text(f"- {{type: push, id: p, token: {TOKEN}, every: 100ms}}\n", "p.yml")
    lim = RateLimit(2)
    assert [lim.allow("k", t) for t in (0, 1, 2, 61, 62)] == [True, True, False, True, True]
