"""Running one check: HTTP through a shared httpx.AsyncClient, TCP through asyncio streams.

A check never raises: every failure (refused, timeout, wrong status, body mismatch) becomes a
CheckResult with ok=False and an error a person can read in an alert.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass

import httpx

from shipyard.pulse.config import Monitor


@dataclass
class CheckResult:
    monitor_id: str
    ts: float  # when the check started (epoch seconds)
    ok: bool
    rtt_ms: float | None
    status: int | None = None
    error: str | None = None
    lag_ms: float = 0.0  # start - scheduled time
    maintenance: bool = False


def make_client(max_connections: int = 200) -> httpx.AsyncClient:
    """One client for every http monitor: pooled keep-alive connections, bounded.

    Heartbeat does not follow redirects unless asked (max_redirects, default 0); we set it per
    request. Timeouts are per request too (each monitor has its own).
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(limits=limits, follow_redirects=False, trust_env=False,
                             headers={"User-Agent": "shipyard-pulse"})


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {exc or 'refused'}"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _validate(m: Monitor, resp: httpx.Response) -> str | None:
    if m.status:
        if resp.status_code not in m.status:
            return f"status {resp.status_code}, expected {list(m.status)}"
    elif resp.status_code >= 400:
        # Heartbeat's default: any status that is not 4xx/5xx is up.
        return f"status {resp.status_code}"
    for name, want in m.response_headers:
        got = resp.headers.get(name)
        if got != want:
            return f"header {name}: {got!r}, expected {want!r}"
    if m.body_patterns:
        text = resp.text
        # Heartbeat: the check passes when any one of the expressions matches.
        if not any(re.search(p, text) for p in m.body_patterns):
            return f"body did not match {list(m.body_patterns)}"
    if m.json_checks:
        try:
            doc = json.loads(resp.content)
        except ValueError:
            return "body is not JSON"
        for jc in m.json_checks:
            if not jc.passes(doc):
                return f"JSON check failed: {jc.description}"
    return None


async def check_http(client: httpx.AsyncClient, m: Monitor) -> tuple[bool, float | None, int | None, str | None]:
    worst_rtt: float | None = None
    status: int | None = None
    for url in m.targets:
        t0 = time.perf_counter()
        try:
            auth = (m.username, m.password or "") if m.username else None
            if m.max_redirects:
                resp = await _with_redirects(client, m, url, auth)
            else:
                # `timeout` covers connect, read, write and waiting for a pooled connection.
                resp = await client.request(m.method, url, headers=dict(m.headers) or None,
                                            content=m.body, timeout=m.timeout, auth=auth)
        except Exception as exc:  # noqa: BLE001 - a check reports, never raises
            rtt = (time.perf_counter() - t0) * 1000
            return False, rtt, None, f"{url}: {_describe(exc, m.timeout)}"
        rtt = (time.perf_counter() - t0) * 1000
        worst_rtt = rtt if worst_rtt is None else max(worst_rtt, rtt)
        status = resp.status_code
        err = _validate(m, resp)
        if err:
            return False, worst_rtt, status, f"{url}: {err}"
    return True, worst_rtt, status, None


async def _with_redirects(client: httpx.AsyncClient, m: Monitor, url: str, auth) -> httpx.Response:
    # httpx's redirect limit is per client; follow by hand to honour each monitor's max_redirects.
    resp = await client.request(m.method, url, headers=dict(m.headers) or None, content=m.body,
                                timeout=m.timeout, auth=auth)
    hops = 0
    while resp.next_request is not None and hops < m.max_redirects:
        hops += 1
        resp = await client.send(resp.next_request)
    if resp.next_request is not None:
        raise httpx.TooManyRedirects(f"more than {m.max_redirects} redirects", request=resp.request)
    return resp


async def check_tcp(m: Monitor) -> tuple[bool, float | None, int | None, str | None]:
    worst_rtt: float | None = None
    for target in m.targets:
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        t0 = time.perf_counter()
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), m.timeout)
            if m.send is not None:
                writer.write(m.send.encode())
                await writer.drain()
            if m.receive is not None:
                want = m.receive.encode()
                got = b""
                deadline = t0 + m.timeout
                while want not in got:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        raise asyncio.TimeoutError
                    chunk = await asyncio.wait_for(reader.read(4096), left)
                    if not chunk:
                        return False, (time.perf_counter() - t0) * 1000, None, \
                            f"{target}: closed before sending {m.receive!r}"
                    got += chunk
        except (asyncio.TimeoutError, TimeoutError):
            return False, (time.perf_counter() - t0) * 1000, None, f"{target}: timed out after {m.timeout:g}s"
        except OSError as exc:
            return False, (time.perf_counter() - t0) * 1000, None, \
                f"{target}: connection failed: {exc.strerror or exc}"
        finally:
            if writer is not None:
                writer.close()
                try:
                    await writer.wait_closed()
                except OSError:
                    pass
        rtt = (time.perf_counter() - t0) * 1000
        worst_rtt = rtt if worst_rtt is None else max(worst_rtt, rtt)
    return True, worst_rtt, None, None


async def run_check(client: httpx.AsyncClient, m: Monitor) -> tuple[bool, float | None, int | None, str | None]:
    if m.type == "http":
        return await check_http(client, m)
    return await check_tcp(m)
