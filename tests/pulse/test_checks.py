"""One check against real servers: request options and response conditions."""

from __future__ import annotations

import asyncio

from shipyard.pulse.checks import ClientPool, run_check
from shipyard.pulse.config import parse_text


def check(text: str):
    [m] = parse_text(text, "c.yml")

    async def go():
        pool = ClientPool(4)
        try:
            async with pool.slot(m) as client:
                o = await run_check(client, m)
                return o.ok, o.rtt_ms, o.status, o.error
        finally:
            await pool.aclose()

    return asyncio.run(go())


def mon(url: str, extra: str) -> str:
    return f"- type: http\n  id: c\n  urls: ['{url}']\n  schedule: '@every 1s'\n  timeout: 2s\n{extra}"


def test_request_and_response_conditions(backend):
    base = ("  check.request:\n    method: POST\n    headers: {X-Token: s3cret}\n"
            "    body: {ping: 1}\n")
    ok, rtt, status, err = check(mon(backend.url + "/api", base + (
        "  check.response:\n    status: [201]\n    headers: {X-Service: billing}\n"
        "    body: ['nomatch', '\"token\": \"s3cret\"']\n    json:\n"
        "      - {description: body was sent as JSON, condition: {equals: {body: '{\"ping\": 1}'}}}\n"
        "      - {description: method, condition: {regexp: {method: '^PO'}}}\n"
        "      - {description: db, condition: {contains: {db: o}}}\n"
        "      - {description: JSON label, condition: {equals: {type: application/json}}}\n")))
    assert (ok, status, err) == (True, 201, None) and rtt > 0

    ok, _, status, err = check(mon(backend.url, base + "  check.response.status: [200]\n"))
    assert not ok and status == 201 and err.endswith("status 201, expected [200]")
    ok, _, _, err = check(mon(backend.url, base + "  check.response.headers: {X-Service: search}\n"))
    assert not ok and "header X-Service: 'billing', expected 'search'" in err
    ok, _, _, err = check(mon(backend.url, base + "  check.response.body: 'maintenance mode'\n"))
    assert not ok and "body did not match" in err
    ok, _, _, err = check(mon(backend.url, base + "  check.response.json:\n"
                              "    - {description: db healthy, condition: {equals: {db: down}}}\n"))
    assert not ok and err.endswith("JSON check failed: db healthy")


def test_default_status_rule_is_below_400(backend):
    backend.mode = "fail"
    ok, _, status, err = check(mon(backend.url, ""))
    assert not ok and status == 500 and err.endswith("status 500")
    backend.mode = "ok"
    assert check(mon(backend.url, ""))[0] is True


def test_all_urls_must_be_up(backend):
    text = (f"- type: http\n  id: c\n  urls: ['{backend.url}/a', 'http://127.0.0.1:9/']\n"
            "  schedule: '@every 1s'\n  timeout: 1s\n")
    ok, _, _, err = check(text)
    assert not ok and err.startswith("http://127.0.0.1:9/: connection failed")


def test_tcp_receive_mismatch(tcp_listener):
    ok, _, _, err = check(f"- type: tcp\n  id: c\n  hosts: ['127.0.0.1:{tcp_listener.port}']\n"
                          "  schedule: '@every 1s'\n  timeout: 500ms\n  check.send: 'HELLO'\n  check.receive: '+PONG'\n")
    assert not ok and ("closed before sending '+PONG'" in err or "timed out" in err)
    ok, rtt, _, err = check(f"- type: tcp\n  id: c\n  hosts: ['127.0.0.1:{tcp_listener.port}']\n"
                            "  schedule: '@every 1s'\n  check.send: 'PING'\n  check.receive: '+PONG'\n")
    assert ok and err is None and rtt > 0
