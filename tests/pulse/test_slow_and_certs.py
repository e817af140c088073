"""Response time ("slow", its own alert and recovery) and certificate expiry (days left,
warnings at 30/7 days, page and /metrics, `type: tls`) against real servers (issue 18, 2 and 3)."""

from __future__ import annotations

import re

import httpx
import pytest

from shipyard.pulse.alerting import response_stat
from shipyard.pulse.config import parse_text
from shipyard.pulse.model import ConfigProblem
from tests.helpers import free_port, read_outbox, wait_for
from tests.pulse.conftest import write_monitors
from tests.pulse.tlsutil import TestCA, TlsServer


def test_slow_state_alerts_and_recovers_apart_from_down(tmp_path, backend, run_pulse):
    write_monitors(tmp_path / "conf" / "a.yml",
                   f"- type: http\n  id: api\n  name: API\n  urls: ['{backend.url}/']\n  schedule: '@every 1s'\n"
                   "  timeout: 2s\n  slow_threshold: {threshold: 150ms, checks: 3}\n")
    run = run_pulse(tmp_path / "conf", port=free_port())
    st = lambda: run.svc.states["api"]  # noqa: E731
    run.until(lambda: st().checks >= 3, what="fast checks")
    assert st().status() == "up"
    backend.mode, backend.delay = "slow", 0.25  # a lethargic service: up, but slow
    run.until(lambda: st().slow, what="slow")
    [n] = wait_for(read_outbox, what="the slow notice")
    assert n["level"] == "warning" and n["title"] == "API is slow"
    assert re.search(r"mean response time \d+(\.\d)? ms over the last 3 checks \(threshold 150 ms\)", n["message"])
    assert not st().triggered and st().status() == "slow"

    base = f"http://127.0.0.1:{run.svc.port}"
    assert 'pulse_monitor_slow{monitor="api"} 1' in httpx.get(base + "/metrics").text
    page = httpx.get(base + "/").text
    assert "data-status='slow'" in page and "class='badge slow'" in page and 'class="threshold"' in page
    run.step(3.0, by=1.0)
    assert len(read_outbox()) == 1  # one notice per transition

    backend.mode = "ok"
    run.until(lambda: not st().slow, what="fast again")
    notes = wait_for(lambda: x if len(x := read_outbox()) >= 2 else None, what="the recovery")
    assert [x["title"] for x in notes] == ["API is slow", "API is fast again"]
    assert 'pulse_monitor_slow{monitor="api"} 0' in httpx.get(base + "/metrics").text


def test_slow_threshold_options():
    [m] = parse_text("- {type: tcp, id: a, hosts: ['h:1'], schedule: '@every 1s', "
                     "slow_threshold: {threshold: 0.8s, checks: 20, stat: p95}}\n", "a.yml")
    assert (m.slow_threshold_ms, m.slow_window, m.slow_stat) == (800, 20, "p95")
    assert response_stat([10.0] * 19 + [1000.0], "p95") == 10.0
    assert response_stat([10.0] * 18 + [1000.0] * 2, "p95") == 1000.0
    with pytest.raises(ConfigProblem, match="a.yml:1: slow_threshold stat 'p100' is not valid"):
        parse_text("- {type: tcp, id: a, hosts: ['h:1'], schedule: '@every 1s', "
                   "slow_threshold: {threshold: 1s, stat: p100}}\n", "a.yml")


@pytest.fixture(scope="module")
def expiring(tmp_path_factory):
    ca = TestCA(tmp_path_factory.mktemp("pki"))
    srv = TlsServer(ca.issue("soon", days=5))
    yield ca, srv
    srv.stop()


def test_certificate_expiring_in_5_days(tmp_path, expiring, run_pulse):
    ca, srv = expiring
    write_monitors(tmp_path / "conf" / "a.yml",
                   f"- type: http\n  id: web\n  name: Web\n  urls: ['{srv.url}/']\n  schedule: '@every 1s'\n"
                   f"  ssl.certificate_authorities: ['{ca.path}']\n"
                   f"- type: tls\n  id: raw\n  hosts: ['127.0.0.1:{srv.port}']\n  schedule: '@every 1s'\n"
                   f"  ssl.certificate_authorities: ['{ca.path}']\n  cert_expiry_warn_days: [3]\n")
    run = run_pulse(tmp_path / "conf", port=free_port())
    run.until(lambda: run.svc.states["web"].checks >= 3 and run.svc.states["raw"].checks >= 3, what="checks")
    assert run.svc.states["raw"].last.ok and run.svc.states["web"].last.ok
    for mid in ("web", "raw"):
        days = (run.svc.states[mid].last.cert_expires - run.clock.now()) / 86400
        assert 4.9 < days <= 5.0
    # 5 days left: past the 30-day warning and the 7-day one: ONE notice (the 7-day), not two,
    # and none for `raw`, which warns at 3 days only.
    [n] = wait_for(read_outbox, what="the certificate warning")
    assert n["level"] == "warning" and n["title"] == "Web: TLS certificate expires in 4 days"
    assert n["fields"]["threshold_days"] == 7
    base = f"http://127.0.0.1:{run.svc.port}"
    metrics = httpx.get(base + "/metrics").text
    for mid in ("web", "raw"):
        left = float(re.search(rf'pulse_tls_cert_days_left\{{monitor="{mid}"\}} ([0-9.]+)', metrics).group(1))
        assert 4.9 < left <= 5.0
    assert "certificate expires in 5 days" in httpx.get(base + "/").text
    api = {m["id"]: m for m in httpx.get(base + "/api/monitors").json()["monitors"]}
    assert api["web"]["cert_days_left"] == pytest.approx(5.0, abs=0.1)
    # Two days later (manual time) `raw` crosses its 3-day threshold: one notice for it.
    run.clock.advance(2 * 86400)  # one jump: missed slots are skipped, not run late
    run.settle()
    run.step(2.0, by=1.0)
    notes = wait_for(lambda: x if len(x := read_outbox()) >= 2 else None, what="the raw warning")
    assert [x["title"] for x in notes][1:] == ["raw: TLS certificate expires in 2 days"]


def test_tls_monitor_fails_on_an_untrusted_certificate(expiring):
    from tests.pulse.test_checks import check

    _, srv = expiring
    ok, _, _, err = check(f"- {{type: tls, id: t, hosts: ['127.0.0.1:{srv.port}'], schedule: '@every 1s', timeout: 2s}}\n")
    assert not ok and "TLS failed: CERTIFICATE_VERIFY_FAILED" in err
