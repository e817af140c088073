"""Running one check: HTTP through pooled httpx clients, TCP through asyncio streams.

A check never raises: every failure (refused, timeout, wrong status, body mismatch) becomes an
Outcome with ok=False and an error a person can read in an alert. The response body is read
only up to `max_body` bytes (pulse.max_body_bytes) before body conditions run, and body regexes
are RE2 (linear time): a target cannot exhaust the monitor's memory or freeze its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator

import httpx

from shipyard.pulse.model import Monitor, TargetResult, TlsOptions
from shipyard.pulse.netchecks import check_dns, check_icmp
from shipyard.pulse.tlsconf import cert_not_after, ssl_context


@dataclass
class Outcome:
    ok: bool
    rtt_ms: float | None
    status: int | None = None
    error: str | None = None
    cert_expires: float | None = None
    targets: tuple[TargetResult, ...] = ()  # per URL / address, when there are several


def make_client(max_connections: int = 4, *, tls: TlsOptions = TlsOptions(), proxy: httpx.Proxy | None = None,
                local_address: str | None = None) -> httpx.AsyncClient:
    """A pooled keep-alive client. Heartbeat does not follow redirects unless asked
    (max_redirects, default 0); timeouts are per request (each monitor has its own)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    ctx = ssl_context(tls)
    transport = httpx.AsyncHTTPTransport(verify=ctx, limits=limits, local_address=local_address, proxy=proxy)
    return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False,
                             headers={"User-Agent": "shipyard-pulse"})


def _client_key(m: Monitor) -> tuple | None:
    """What makes a monitor need a client of its own (None: the shared ones do)."""
    family = None if m.ipv4 and m.ipv6 else ("0.0.0.0" if m.ipv4 else "::")
    if m.tls == TlsOptions() and not m.proxy_url and family is None:
        return None
    return (m.tls, m.proxy_url, m.proxy_headers, family)


class ClientPool:
    """At most `concurrency` checks in flight, spread over a few small shared httpx clients.

    Why shards: httpx's connection pool costs more CPU per request the more connections one
    pool holds (https://github.com/encode/httpx/issues/3215); measured here, 16 connections in
    one pool cost ~2 ms CPU per request, 4 pools of 4 ~0.8 ms. So each client keeps
    `per_client` connections, and a check takes the least busy client. Checks wait on the
    semaphore, never inside httpx's pool, so a check's timeout starts when it really starts.
    A monitor with its own TLS options, proxy or address family gets a client of its own.
    """

    def __init__(self, concurrency: int = 100, per_client: int = 4) -> None:
        self.concurrency = max(1, concurrency)
        self.per_client = max(1, min(per_client, self.concurrency))
        n = -(-self.concurrency // self.per_client)
        self.clients = [make_client(self.per_client) for _ in range(n)]
        self.busy = [0] * n
        self._own: dict[tuple, httpx.AsyncClient] = {}
        self._sem = asyncio.Semaphore(self.concurrency)

    @contextlib.asynccontextmanager
    async def slot(self, m: Monitor | None = None) -> AsyncIterator[httpx.AsyncClient]:
        async with self._sem:
            key = _client_key(m) if m is not None else None
            if key is not None:
                if key not in self._own:
                    tls, proxy_url, proxy_headers, family = key
                    proxy = httpx.Proxy(proxy_url, headers=dict(proxy_headers) or None) if proxy_url else None
                    self._own[key] = make_client(self.per_client, tls=tls, proxy=proxy, local_address=family)
                yield self._own[key]
                return
            i = min(range(len(self.busy)), key=self.busy.__getitem__)
            self.busy[i] += 1
            try:
                yield self.clients[i]
            finally:
                self.busy[i] -= 1

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in [*self.clients, *self._own.values()]), return_exceptions=True)


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {exc or 'refused'}"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    return f"{type(exc).__name__}: {exc}"


async def _read_capped(resp: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """The first `cap` bytes of the body, and whether there was more (not read)."""
    buf = bytearray()
    async for chunk in resp.aiter_bytes():
        buf += chunk
        if len(buf) > cap:
            return bytes(buf[:cap]), True
    return bytes(buf), False


def _validate(m: Monitor, resp: httpx.Response, body: bytes, truncated: bool, cap: int) -> str | None:
    if m.status:
        if resp.status_code not in m.status:
            return f"status {resp.status_code}, expected {list(m.status)}"
    elif resp.status_code >= 400:
        return f"status {resp.status_code}"  # Heartbeat's default: any status below 400 is up
    for name, want in m.response_headers:
        got = resp.headers.get(name)
        if got != want:
            return f"header {name}: {got!r}, expected {want!r}"
    if m.body_patterns:
        text = body.decode(resp.encoding or "utf-8", errors="replace")
        # Heartbeat: the check passes when any one of the expressions matches.
        if not any(p.search(text) for p in m.body_patterns):
            more = f" (in its first {cap:,} bytes)" if truncated else ""
            return f"body did not match {[p.text for p in m.body_patterns]}{more}"
    if m.json_checks:
        if truncated:
            return f"body is larger than {cap:,} bytes (pulse.max_body_bytes); JSON checks need all of it"
        try:
            doc = json.loads(body)
        except ValueError:
            return "body is not JSON"
        except RecursionError:  # [[[[...]]]] a few thousand deep, within the body cap
            return "body is JSON nested too deeply"
        for jc in m.json_checks:
            if not jc.passes(doc):
                return f"JSON check failed: {jc.description}"
    return None


async def _fetch(client: httpx.AsyncClient, m: Monitor, url: str, auth: Any, cap: int) -> tuple:
    """(response, first bytes of the body, truncated, certificate expiry), redirects followed
    up to m.max_redirects by hand (httpx's limit is per client)."""
    req = client.build_request(m.method, url, headers=dict(m.headers) or None, content=m.body, timeout=m.timeout)
    hops = 0
    while True:
        resp = await client.send(req, auth=auth, stream=True)
        try:
            stream = resp.extensions.get("network_stream")
            expires = cert_not_after(stream.get_extra_info("ssl_object")) if stream is not None else None
            if resp.next_request is not None and m.max_redirects:
                if hops >= m.max_redirects:
                    raise httpx.TooManyRedirects(f"more than {m.max_redirects} redirects", request=resp.request)
                hops += 1
                req = resp.next_request
                continue
            body, truncated = await _read_capped(resp, cap)
            return resp, body, truncated, expires
        finally:
            await resp.aclose()


async def check_http(client: httpx.AsyncClient, m: Monitor, cap: int) -> Outcome:
    """Every URL is checked (as Heartbeat does, one result each); the check is up when all are."""
    per: list[TargetResult] = []
    expires = None
    for i, url in enumerate(m.targets):
        t0 = time.perf_counter()
        creds = m.target_auth[i] if i < len(m.target_auth) else None
        auth = creds or ((m.username, m.password or "") if m.username else None)
        try:
            resp, body, truncated, exp = await asyncio.wait_for(_fetch(client, m, url, auth, cap), m.timeout)
        except (asyncio.TimeoutError, TimeoutError):
            per.append(TargetResult(url, False, (time.perf_counter() - t0) * 1000, None,
                                    f"{url}: timed out after {m.timeout:g}s"))
            continue
        except Exception as exc:  # noqa: BLE001 - a check reports, never raises
            per.append(TargetResult(url, False, (time.perf_counter() - t0) * 1000, None,
                                    f"{url}: {_describe(exc, m.timeout)}"))
            continue
        rtt = (time.perf_counter() - t0) * 1000
        if exp is not None:
            expires = exp if expires is None else min(expires, exp)
        err = _validate(m, resp, body, truncated, cap)
        per.append(TargetResult(url, err is None, rtt, resp.status_code, f"{url}: {err}" if err else None))
    return _combine(per, expires)


def _combine(per: list[TargetResult], expires: float | None = None) -> Outcome:
    """One outcome from the targets': up when all are; the worst time; the first error."""
    bad = next((t for t in per if not t.ok), None)
    rtts = [t.rtt_ms for t in per if t.rtt_ms is not None]
    status = bad or (per[-1] if per else None)
    return Outcome(bad is None, max(rtts) if rtts else None, status.status if status else None,
                   bad.error if bad else None, expires, tuple(per) if len(per) > 1 else ())


def _families(m: Monitor) -> int:
    if m.ipv4 and m.ipv6:
        return socket.AF_UNSPEC
    return socket.AF_INET if m.ipv4 else socket.AF_INET6


async def _addresses(m: Monitor, host: str, port: int) -> list[str]:
    """`mode: any`: the host name as is (the first address that answers); `mode: all`: every
    address it resolves to (in the families ipv4/ipv6 allow)."""
    if m.mode == "any":
        return [host]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=_families(m), type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


async def _tcp_once(m: Monitor, target: str, host: str, port: int, deadline: float,
                    server_name: str) -> tuple[str | None, float | None]:
    """(error or None, certificate expiry for `type: tls`)."""
    writer = None
    expires = None
    tls = {"ssl": ssl_context(m.tls), "server_hostname": server_name} if m.type == "tls" else {}
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, family=_families(m), **tls), max(0.0, deadline - time.perf_counter()))
        if m.type == "tls":
            expires = cert_not_after(writer.get_extra_info("ssl_object"))
        if m.send is not None:
            writer.write(m.send.encode())
            await writer.drain()
        if m.receive is not None:
            want, got = m.receive.encode(), b""
            while want not in got:
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise asyncio.TimeoutError
                chunk = await asyncio.wait_for(reader.read(4096), left)
                if not chunk:
                    return f"{target}: closed before sending {m.receive!r}", expires
                got = (got + chunk)[-max(len(want) * 2, 4096):]
    except (asyncio.TimeoutError, TimeoutError):
        return f"{target}: timed out after {m.timeout:g}s", expires
    except ssl.SSLError as exc:
        return f"{target}: TLS failed: {exc.reason or exc}", expires
    except OSError as exc:
        return f"{target}: connection failed: {exc.strerror or exc}", expires
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
    return None, expires


async def check_tcp(m: Monitor) -> Outcome:
    """`type: tcp`, and `type: tls` (the same, through a TLS handshake that records the
    certificate's expiry). Each target (and with `mode: all`, each address) is a result."""
    per: list[TargetResult] = []
    expires: float | None = None
    for target in m.targets:
        host, _, port_s = target.rpartition(":")
        host, port = host.strip("[]"), int(port_s)
        t0 = time.perf_counter()
        deadline = t0 + m.timeout
        try:
            addrs = await asyncio.wait_for(_addresses(m, host, port), m.timeout)
        except (OSError, asyncio.TimeoutError, TimeoutError) as exc:
            per.append(TargetResult(target, False, None, None, f"{target}: cannot resolve: {exc}"))
            continue
        for addr in addrs:
            shown = target if m.mode == "any" else f"{target} ({addr})"
            a0 = time.perf_counter()
            err, exp = await _tcp_once(m, shown, addr, port, deadline, host)
            if exp is not None:
                expires = exp if expires is None else min(expires, exp)
            per.append(TargetResult(shown, err is None, (time.perf_counter() - a0) * 1000, None, err))
    return _combine(per, expires)


async def run_check(client: httpx.AsyncClient, m: Monitor, max_body: int = 1_048_576) -> Outcome:
    if m.type == "http":
        return await check_http(client, m, max_body)
    if m.type in ("dns", "icmp"):
        t0 = time.perf_counter()
        try:
            ok, rtt, err = await asyncio.wait_for((check_dns if m.type == "dns" else check_icmp)(m), m.timeout + 1)
        except (asyncio.TimeoutError, TimeoutError):
            ok, rtt, err = False, (time.perf_counter() - t0) * 1000, f"timed out after {m.timeout:g}s"
        return Outcome(ok, rtt, None, err)
    return await check_tcp(m)  # tcp, tls
