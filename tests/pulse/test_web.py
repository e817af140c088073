"""Status page, JSON API and /metrics of a running monitor; the page in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from shipyard.pulse.model import CheckResult
from shipyard.pulse.history import open_history
from tests.helpers import free_port
from tests.helpers import wait_for
from tests.pulse.conftest import write_monitors

CHROMIUM = "/usr/bin/chromium"


def monitors(backend_url: str) -> str:
    return (f"- type: http\n  id: checkout-api\n  name: Checkout API\n  urls: ['{backend_url}/health']\n"
            "  schedule: '@every 1s'\n  alert: {failure_threshold: 2}\n"
            "- type: http\n  id: search\n  name: Search\n  urls: ['http://127.0.0.1:9/']\n"
            "  schedule: '@every 1s'\n  timeout: 500ms\n  alert: {failure_threshold: 2}\n")


@pytest.fixture
def running(tmp_path, backend, run_pulse):
    # Yesterday's history for the chart and the uptime columns (written with explicit times).
    hist = open_history(None, default_dir=tmp_path)
    now = time.time()
    hist.write_checks([CheckResult("checkout-api", now - 86400 + i * 600, i % 40 != 7,
                                   20 + (i % 12) * 3.0, 200) for i in range(140)])
    hist.open_incident("checkout-api", now - 80000, "status 502, expected [200]")
    hist.resolve_incident("checkout-api", now - 79000)
    write_monitors(tmp_path / "conf" / "web.yml", monitors(backend.url))
    run = run_pulse(tmp_path / "conf", port=free_port(), history=hist)
    run.until(lambda: run.svc.states["search"].triggered and run.svc.states["checkout-api"].checks >= 3,
             what="search down, checkout up")
    wait_for(lambda: run.svc.history.incidents(monitor_id="search"), what="incident recorded")
    yield run
    run.stop()
    hist.close()


def test_api_and_metrics(running):
    base = f"http://127.0.0.1:{running.svc.port}"
    body = httpx.get(f"{base}/api/monitors").json()
    by_id = {m["id"]: m for m in body["monitors"]}
    assert by_id["checkout-api"]["status"] == "up" and by_id["search"]["status"] == "down"
    assert "connection failed" in by_id["search"]["error"]
    up = by_id["checkout-api"]["uptime"]
    assert 0.95 < up["24h"] < 1.0 and 0.95 < up["7d"] < 1.0 and up["30d"] == up["7d"]
    assert by_id["search"]["uptime"]["24h"] == 0.0

    one = httpx.get(f"{base}/api/monitors/search").json()
    assert one["recent"] and one["recent"][0]["ok"] is False
    assert one["incidents"][0]["resolved"] is None
    r = httpx.get(f"{base}/api/monitors/nope")
    assert r.status_code == 404 and "no monitor 'nope'" in r.json()["detail"]

    m = httpx.get(f"{base}/metrics")
    assert m.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = m.text
    assert 'pulse_monitor_up{monitor="checkout-api"} 1' in text
    assert 'pulse_monitor_up{monitor="search"} 0' in text
    assert 'pulse_monitor_alerting{monitor="search"} 1' in text
    assert "# TYPE pulse_checks_total counter" in text
    checks = int(re.search(r'pulse_checks_total\{monitor="checkout-api"\} (\d+)', text).group(1))
    assert checks >= 3
    assert re.search(r'pulse_scheduler_lag_seconds\{quantile="0.99"\} [0-9.e-]+', text)
    # Every sample line is `name{labels} value` or `name value`.
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r'[a-z_]+(\{[a-z_]+="[^"]*"\})? -?[0-9.e+-]+', line), line


def test_badges_answer_svg(running):
    base = f"http://127.0.0.1:{running.svc.port}/badge"
    r = httpx.get(f"{base}/checkout-api/status.svg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    assert r.text.startswith("<svg") and "no-cache" in r.headers["cache-control"]
    assert httpx.get(f"{base}/nope/status.svg").status_code == 404
    assert httpx.get(f"{base}/search/uptime-1y.svg").status_code == 404


@pytest.mark.slow  # a real process / a browser: seconds
def test_status_page_in_chromium(running, tmp_path):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make services` (scripts/ensure-services.sh)"
    url = f"http://127.0.0.1:{running.svc.port}/"
    shot = tmp_path / "pulse-status.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 560})
            page.goto(url)
            assert page.title() == "Pulse status"
            checkout = page.locator("section[data-monitor='checkout-api']")
            search = page.locator("section[data-monitor='search']")
            assert checkout.get_attribute("data-status") == "up"
            assert search.get_attribute("data-status") == "down"
            assert checkout.locator(".badge").inner_text().lower() == "up"
            assert search.locator(".badge").inner_text().lower() == "down"
            assert "connection failed" in search.locator(".error").inner_text()
            # Uptime over 24 h / 7 d / 30 d.
            cells = checkout.locator("table.uptime td")
            assert cells.count() == 3
            assert re.fullmatch(r"9\d\.\d\d%", cells.nth(0).inner_text())
            assert search.locator("td[data-window='24h']").inner_text() == "0.00%"
            # The response-time chart is drawn (inline SVG with a line and the failed buckets).
            assert checkout.locator("svg.chart polyline").count() == 1
            assert len(checkout.locator("svg.chart polyline").get_attribute("points").split()) > 20
            assert checkout.locator("svg.chart rect.bad").count() >= 1
            # Recent incidents: the ongoing one and yesterday's resolved one.
            incidents = page.locator("#incidents tr.incident")
            assert incidents.count() == 2
            assert "ongoing" in page.locator("#incidents tr.incident[data-monitor='search']").inner_text()
            assert "status 502" in page.locator("#incidents tr.incident[data-monitor='checkout-api']").inner_text()
            assert "2 monitors" in page.locator("#summary").inner_text()
            # What needs attention comes first.
            assert page.locator("section.monitor").first.get_attribute("data-monitor") == "search"
            page.screenshot(path=str(shot), full_page=True)

            # Badges, as a README shows them: each SVG rendered on its own by the browser.
            for path, label, value, colour in [
                    ("search/status.svg", "status", "down", "#c7130a"),
                    ("checkout-api/status.svg", "status", "up", "#40cc11"),
                    ("search/uptime-24h.svg", "uptime 24h", "0.00%", "#c7130a"),
                    ("checkout-api/uptime-7d.svg", "uptime 7d", r"9\d\.\d\d%", None),
                    ("checkout-api/response-time.svg", "response time", r"\d+ ms", "#40cc11")]:
                page.goto(f"{url}badge/{path}")
                assert page.locator("svg text.label").text_content() == label
                assert re.fullmatch(value, page.locator("svg text.value").text_content())
                if colour:
                    assert page.locator("svg rect.value").get_attribute("fill") == colour
                box = page.locator("svg").bounding_box()
                assert box["height"] == 20 and box["width"] > 60
                # The value's box really holds its text (the width estimate fits the font).
                text_box = page.locator("svg text.value").bounding_box()
                rect_box = page.locator("svg rect.value").bounding_box()
                assert rect_box["x"] <= text_box["x"] and text_box["x"] + text_box["width"] <= rect_box["x"] + rect_box["width"]
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    # `SHIPYARD_TEST_PULSE_SCREENSHOT=docs/img/pulse-status.png` refreshes the docs' picture.
    dest = os.environ.get("SHIPYARD_TEST_PULSE_SCREENSHOT")
    if dest:
        shutil.copy(shot, dest)
