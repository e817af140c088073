"""The status page (`/`), the JSON API (`/api/...`) and Prometheus `/metrics`.

The page is server-rendered HTML with inline SVG charts: no JavaScript framework, no CDN (the
monitor often runs where there is no internet). It refreshes itself every 15 seconds.

/metrics is the Prometheus text exposition format, written by hand
(https://prometheus.io/docs/instrumenting/exposition_formats/), labelled by monitor id.
"""

from __future__ import annotations

import asyncio
import html
import socket
from datetime import datetime, timezone
import contextlib
from typing import Any, Callable

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from shipyard.errors import ConfigError
from shipyard.pulse import badges
from shipyard.pulse.history import WINDOWS
from shipyard.pulse.status import StatusView


def _fmt_pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:.2f}%"


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _label(v: str) -> str:
    # Exposition format: backslash, double quote and newline are escaped in label values.
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(svc: StatusView) -> str:
    lines: list[str] = []

    def family(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value:.6g}" if isinstance(value, float) else f"{name}{labels} {value}")

    snap = svc.snapshot()
    lab = {m["id"]: f'{{monitor="{_label(m["id"])}"}}' for m in snap}
    family("pulse_monitor_up", "gauge", "1 when the last check succeeded, 0 when it failed (absent before the first).",
           [(lab[m["id"]], 1 if m["ok"] else 0) for m in snap if m["ok"] is not None])
    family("pulse_monitor_alerting", "gauge", "1 while the monitor is down past its failure threshold.",
           [(lab[m["id"]], 1 if m["status"] == "down" else 0) for m in snap])
    family("pulse_monitor_slow", "gauge", "1 while the response time is over the monitor's slow_threshold.",
           [(lab[m["id"]], 1 if m["slow"] else 0) for m in snap if m["slow_threshold_ms"] is not None])
    family("pulse_tls_cert_days_left", "gauge", "Days until the TLS certificate of the last check expires.",
           [(lab[m["id"]], float(m["cert_days_left"])) for m in snap if m["cert_days_left"] is not None])
    family("pulse_check_duration_seconds", "gauge", "Response time of the last check.",
           [(lab[m["id"]], m["rtt_ms"] / 1000.0) for m in snap if m["rtt_ms"] is not None])
    family("pulse_checks_total", "counter", "Checks run since the monitor started.",
           [(lab[m["id"]], m["checks"]) for m in snap])
    family("pulse_check_failures_total", "counter", "Failed checks since the monitor started.",
           [(lab[m["id"]], m["failures"]) for m in snap])
    family("pulse_last_check_timestamp_seconds", "gauge", "When the last check started (Unix time).",
           [(lab[m["id"]], float(m["last_check_ts"])) for m in snap if m["last_check_ts"]])
    lag = [(f'{{quantile="{q}"}}', (svc.lag_percentile(q) or 0.0) / 1000.0) for q in (0.5, 0.9, 0.99)]
    family("pulse_scheduler_lag_seconds", "summary", "Check start minus scheduled time (recent checks).", lag)
    family("pulse_skipped_checks_total", "counter", "Slots skipped because the previous check still ran.",
           [("", svc.counters()["skipped_total"])])
    family("pulse_config_errors", "gauge", "Monitor files currently invalid (their last good version runs).",
           [("", len(svc.problems()))])
    family("pulse_monitors", "gauge", "Monitors loaded.", [("", len(svc.monitor_ids()))])
    return "\n".join(lines) + "\n"


def _chart(points: list[tuple[float, float | None, float]], start: float, span: float,
           threshold: float | None = None) -> str:
    """An inline SVG: mean response time per hour, hours with failed checks marked red, and
    the slow threshold as a dashed orange line."""
    w, h, pad = 320, 64, 4
    rtts = [p[1] for p in points if p[1] is not None] + ([threshold * 1.1] if threshold else [])
    if not points:
        return (f'<svg class="chart" width="{w}" height="{h}" role="img" aria-label="no data">'
                f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle" class="nodata">no data yet</text></svg>')
    top = max(rtts) if rtts else 1.0
    top = top if top > 0 else 1.0

    def x(ts: float) -> float:
        return pad + (ts - start) / span * (w - 2 * pad)

    def y(v: float) -> float:
        return h - pad - v / top * (h - 2 * pad)

    pts = " ".join(f"{x(t + 1800):.1f},{y(v):.1f}" for t, v, _ in points if v is not None)
    line = (f'<line class="threshold" x1="{pad}" x2="{w - pad}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}">'
            f'<title>slow above {threshold:g} ms</title></line>' if threshold else "")
    bad = "".join(f'<rect x="{x(t):.1f}" y="0" width="{(w - 2 * pad) / 24:.1f}" height="{h}" class="bad"><title>'
                  f'{(1 - ok) * 100:.0f}% failed in the hour from {_fmt_time(t)}</title></rect>'
                  for t, _, ok in points if ok < 1)
    return (f'<svg class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
            f'aria-label="response time, max {top:.0f} ms">{bad}'
            f'<polyline points="{pts}" fill="none" stroke="#2563eb" stroke-width="1.5"/>{line}'
            f'<text x="{w - pad}" y="12" text-anchor="end" class="axis">{top:.0f} ms</text></svg>')


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1f2933}
header{background:#111827;color:#fff;padding:16px 24px;display:flex;justify-content:space-between;align-items:center}
header h1{margin:0;font-size:20px} header .summary{font-size:14px;opacity:.85}
main{padding:20px 24px;max-width:1200px}
.monitor{background:#fff;border-radius:8px;box-shadow:0 1px 2px rgba(0,0,0,.08);padding:14px 16px;margin-bottom:12px;
 display:grid;grid-template-columns:1.4fr 1.3fr 340px;gap:12px;align-items:center}
.name{font-weight:600;font-size:16px} .meta{font-size:12px;color:#52606d;word-break:break-all}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-size:12px;font-weight:700;text-transform:uppercase;margin-right:8px}
.up{background:#d1fae5;color:#065f46} .down{background:#fee2e2;color:#991b1b} .failing{background:#fef3c7;color:#92400e}
.pending{background:#e5e7eb;color:#374151} .maintenance{background:#dbeafe;color:#1e40af}
.slow{background:#ffedd5;color:#9a3412} .chart .threshold{stroke:#ea580c;stroke-dasharray:4 3}
.cert{font-size:12px;color:#52606d} .cert.soon{color:#9a3412;font-weight:600}
table.uptime{border-collapse:collapse;font-size:13px} table.uptime td,table.uptime th{padding:2px 10px;text-align:right}
table.uptime th{font-weight:500;color:#52606d}
.chart{background:#fafbfc;border:1px solid #e4e7eb;border-radius:4px} .chart .bad{fill:#fecaca}
.axis,.nodata{font-size:10px;fill:#7b8794} .error{color:#991b1b;font-size:12px}
h2{font-size:16px;margin:24px 0 8px} table.incidents{width:100%;background:#fff;border-collapse:collapse;font-size:13px}
table.incidents td,table.incidents th{padding:6px 10px;border-bottom:1px solid #eef0f3;text-align:left}
.problems{background:#fff7ed;border:1px solid #fdba74;padding:8px 12px;border-radius:6px;font-size:13px}
"""


def _cert(m: dict[str, Any]) -> str:
    days = m["cert_days_left"]
    if days is None:
        return ""
    return (f"<div class='cert{' soon' if days < 30 else ''}' data-days='{days:.0f}'>certificate expires in "
            f"{days:.0f} days ({m['cert_expires']})</div>")


def render_page(svc: StatusView, uptime: dict, series: dict, incidents: list[dict]) -> str:
    now = svc.now()
    # What needs attention first: down, failing, then the rest by name.
    order = {"down": 0, "failing": 1, "slow": 2, "maintenance": 3, "pending": 4, "up": 5}
    snap = sorted(svc.snapshot(), key=lambda m: (order.get(m["status"], 5), m["name"].lower()))
    esc = html.escape
    n_up = sum(1 for m in snap if m["status"] == "up")
    n_down = sum(1 for m in snap if m["status"] == "down")
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta http-equiv='refresh' content='15'><title>Pulse status</title><style>{_CSS}</style></head><body>"
             f"<header><h1>Pulse status</h1><div class='summary' id='summary'>{len(snap)} monitors · "
             f"{n_up} up · {n_down} down · {_fmt_time(now)}</div></header><main>"]
    if svc.problems():
        items = "".join(f"<li>{esc(str(p))}</li>" for p in svc.problems())
        parts.append(f"<div class='problems' id='problems'><b>Invalid monitor files</b> "
                     f"(the last good version keeps running)<ul>{items}</ul></div>")
    for m in snap:
        up = uptime.get(m["id"], {})
        cells = "".join(f"<td data-window='{w}'>{_fmt_pct(up.get(w))}</td>" for w in WINDOWS)
        heads = "".join(f"<th>{w}</th>" for w in WINDOWS)
        err = f"<div class='error'>{esc(m['error'])}</div>" if m["error"] else ""
        rtt = f"{m['rtt_ms']:.0f} ms" if m["rtt_ms"] is not None else "–"
        parts.append(
            f"<section class='monitor' data-monitor='{esc(m['id'])}' data-status='{m['status']}'>"
            f"<div><div><span class='badge {m['status']}'>{m['status']}</span>"
            f"<span class='name'>{esc(m['name'])}</span></div>"
            f"<div class='meta'>{esc(m['id'])} · {m['type']} · {esc(', '.join(m['targets']))} · {esc(m['schedule'])}</div>"
            f"<div class='meta'>last check {esc(m['last_check'] or 'pending')} · {rtt}</div>{err}{_cert(m)}</div>"
            f"<table class='uptime'><tr>{heads}</tr><tr>{cells}</tr></table>"
            f"<div>{_chart(series.get(m['id'], []), (now // 3600) * 3600 - 23 * 3600, 24 * 3600, m['slow_threshold_ms'])}"
            f"</div></section>")
    if not snap:
        parts.append("<p>No monitors loaded. Add a YAML file to the config directory.</p>")
    names = {m["id"]: m["name"] for m in snap}
    rows = "".join(
        f"<tr class='incident' data-monitor='{esc(i['monitor_id'])}'><td>{esc(names.get(i['monitor_id'], i['monitor_id']))}</td>"
        f"<td>{_fmt_time(i['started'])}</td><td>{_fmt_time(i['resolved']) if i['resolved'] else '<b>ongoing</b>'}</td>"
        f"<td>{esc(i['error'] or '')}</td></tr>" for i in incidents)
    parts.append("<h2>Recent incidents</h2><table class='incidents' id='incidents'>"
                 "<tr><th>Monitor</th><th>Started</th><th>Resolved</th><th>Error</th></tr>"
                 f"{rows or '<tr><td colspan=4>No incidents.</td></tr>'}</table></main></body></html>")
    return "".join(parts)


PushHandler = Callable[[str, str, "str | None", str], "tuple[int, str]"]


def make_app(svc: StatusView, push: PushHandler | None = None) -> FastAPI:
    app = FastAPI(title="shipyard pulse", docs_url="/api/docs", openapi_url="/api/openapi.json")

    if push is not None:
        # async: runs on the service's loop, where the monitors' state lives.
        @app.post("/api/push/{token}")
        async def push_endpoint(token: str, request: Request, status: str = "up",
                                msg: str | None = None) -> JSONResponse:
            code, text = push(token, status, msg, request.client.host if request.client else "?")
            return JSONResponse({"ok": code == 200, "message": text}, status_code=code)

    # Sync endpoints: FastAPI runs them in its threadpool, so database reads never block the
    # event loop that runs the checks.
    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        now = svc.now()
        ids = svc.monitor_ids()
        return render_page(svc, svc.history.uptime(now, ids), svc.history.series(now, monitor_ids=ids),
                           svc.history.incidents(limit=20))

    @app.get("/api/monitors")
    def monitors() -> dict[str, Any]:
        now = svc.now()
        up = svc.history.uptime(now, svc.monitor_ids())
        return {"time": now, "monitors": [{**m, "uptime": up.get(m["id"], {w: None for w in WINDOWS})}
                                          for m in svc.snapshot()],
                "problems": [{"file": p.file, "line": p.line, "error": p.message, "hint": p.hint}
                             for p in svc.problems()]}

    @app.get("/api/monitors/{monitor_id}")
    def monitor(monitor_id: str, limit: int = 50) -> dict[str, Any]:
        snap = {m["id"]: m for m in svc.snapshot()}
        if monitor_id not in snap:
            raise HTTPException(404, f"no monitor {monitor_id!r}; see /api/monitors")
        now = svc.now()
        return {**snap[monitor_id],
                "uptime": svc.history.uptime(now, [monitor_id]).get(monitor_id, {w: None for w in WINDOWS}),
                "recent": svc.history.recent(monitor_id, limit=min(max(limit, 1), 1000)),
                "recent_targets": svc.history.recent_targets(monitor_id, limit=min(max(limit, 1), 1000)),
                "series": [{"start": t, "rtt_ms": r, "ok_ratio": o}
                           for t, r, o in svc.history.series(now, monitor_ids=[monitor_id]).get(monitor_id, [])],
                "incidents": svc.history.incidents(limit=20, monitor_id=monitor_id)}

    def svg(body: str) -> Response:
        return Response(body, media_type="image/svg+xml", headers={"Cache-Control": "no-cache, max-age=0"})

    def known(monitor_id: str) -> None:
        if svc.monitor(monitor_id) is None:
            raise HTTPException(404, f"no monitor {monitor_id!r}; see /api/monitors")

    @app.get("/badge/{monitor_id}/status.svg")
    def status_svg(monitor_id: str) -> Response:
        known(monitor_id)
        return svg(badges.status_badge(next(m["status"] for m in svc.snapshot() if m["id"] == monitor_id)))

    @app.get("/badge/{monitor_id}/uptime-{window}.svg")
    def uptime_svg(monitor_id: str, window: str) -> Response:
        known(monitor_id)
        if window not in WINDOWS:
            raise HTTPException(404, f"no uptime window {window!r}; use one of {', '.join(WINDOWS)}")
        up = svc.history.uptime(svc.now(), [monitor_id]).get(monitor_id, {})
        return svg(badges.uptime_badge(window, up.get(window)))

    @app.get("/badge/{monitor_id}/response-time.svg")
    def response_time_svg(monitor_id: str) -> Response:
        """Mean response time of the successful checks over the last 24 hours."""
        known(monitor_id)
        hours = svc.history.series(svc.now(), monitor_ids=[monitor_id]).get(monitor_id, [])
        means = [rtt for _, rtt, _ in hours if rtt is not None]
        return svg(badges.response_time_badge(sum(means) / len(means) if means else None))

    @app.get("/api/incidents")
    def incidents(limit: int = 50) -> dict[str, Any]:
        return {"incidents": svc.history.incidents(limit=min(max(limit, 1), 1000))}

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"ok": True, **svc.counters(), "lag_p99_ms": svc.lag_percentile(0.99)}

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(render_metrics(svc), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


class _Server(uvicorn.Server):
    # The pulse service owns SIGINT/SIGTERM; uvicorn must not capture them.
    def capture_signals(self):  # type: ignore[override]
        return contextlib.nullcontext()


class RunningServer:
    def __init__(self, server: _Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.task = asyncio.create_task(server.serve(sockets=[sock]), name="pulse-web")

    async def shutdown(self, grace: float = 5.0) -> None:
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=max(grace, 0.5))
        except (asyncio.TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
            self.task.cancel()
        self.sock.close()


async def serve(svc: StatusView, host: str, port: int, push: PushHandler | None = None) -> RunningServer:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                          hint="pick another --port, or stop what is using it") from None
    sock.listen(128)
    sock.setblocking(False)
    config = uvicorn.Config(make_app(svc, push), log_level="warning", lifespan="off", access_log=False)
    server = _Server(config)
    running = RunningServer(server, sock)
    # Wait until uvicorn is accepting, so `ready` really means ready.
    for _ in range(200):
        if server.started or running.task.done():
            break
        await asyncio.sleep(0.01)
    if running.task.done():
        running.task.result()
    return running
