"""`type: dns` and `type: icmp` checks.

dns: the name in `hosts` must resolve (dnspython, https://dnspython.readthedocs.io), through
`dns.resolver` (host[:port]) or the system's resolvers; with `dns.expect`, every expected value
must be among the answers.

icmp: an echo request through an unprivileged ICMP socket (SOCK_DGRAM, IPPROTO_ICMP), which
Linux allows to the groups in net.ipv4.ping_group_range
(https://man7.org/linux/man-pages/man7/icmp.7.html). Pulse never needs root and never fakes a
ping with TCP: where the range does not include the service's group, `validate` refuses the
monitor and says why.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time

import dns.asyncresolver
import dns.exception
import dns.resolver

from shipyard.pulse.model import Monitor

def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


async def _echo(addr: str, family: int, timeout: float) -> float:
    """One echo request/reply; the kernel sets the identifier and filters replies for us."""
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    kind = 8 if family == socket.AF_INET else 128
    payload = os.urandom(16)
    header = struct.pack("!BBHHH", kind, 0, 0, 0, 1)
    packet = struct.pack("!BBHHH", kind, 0, _checksum(header + payload), 0, 1) + payload
    loop = asyncio.get_running_loop()
    with socket.socket(family, socket.SOCK_DGRAM, proto) as s:
        s.setblocking(False)
        t0 = time.perf_counter()
        await loop.sock_sendto(s, packet, (addr, 0))
        while True:
            data = await asyncio.wait_for(loop.sock_recv(s, 2048), max(0.0, timeout - (time.perf_counter() - t0)))
            if data[8:] == payload:
                return (time.perf_counter() - t0) * 1000


async def check_icmp(m: Monitor) -> tuple[bool, float | None, str | None]:
    worst = None
    for host in m.targets:
        family = socket.AF_UNSPEC if m.ipv4 and m.ipv6 else socket.AF_INET if m.ipv4 else socket.AF_INET6
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, family=family, type=socket.SOCK_DGRAM)
            addrs = sorted({(i[0], i[4][0]) for i in infos})
            for fam, addr in (addrs if m.mode == "all" else addrs[:1]):
                rtt = await _echo(addr, fam, m.timeout)
                worst = rtt if worst is None else max(worst, rtt)
        except (asyncio.TimeoutError, TimeoutError):
            return False, None, f"{host}: no echo reply within {m.timeout:g}s"
        except OSError as exc:
            return False, None, f"{host}: {exc.strerror or exc}"
    return True, worst, None


async def check_dns(m: Monitor) -> tuple[bool, float | None, str | None]:
    r = dns.asyncresolver.Resolver(configure=m.resolver is None)
    if m.resolver is not None:
        host, _, port = m.resolver.rpartition(":") if m.resolver.count(":") == 1 else (m.resolver, "", "53")
        r.nameservers, r.port = [host.strip("[]")], int(port or 53)
    worst = None
    for name in m.targets:
        t0 = time.perf_counter()
        try:
            answer = await r.resolve(name, m.record_type, lifetime=m.timeout, search=False)
        except dns.resolver.NXDOMAIN:
            return False, None, f"{name}: no such name (NXDOMAIN)"
        except dns.resolver.NoAnswer:
            return False, None, f"{name}: no {m.record_type} record"
        except dns.exception.Timeout:
            return False, None, f"{name}: no answer within {m.timeout:g}s"
        except dns.exception.DNSException as exc:
            return False, None, f"{name}: {exc}"
        rtt = (time.perf_counter() - t0) * 1000
        worst = rtt if worst is None else max(worst, rtt)
        got = {rr.to_text().rstrip(".").strip('"') for rr in answer}
        missing = [v for v in m.expect if v.rstrip(".") not in got]
        if missing:
            return False, rtt, f"{name} {m.record_type}: {', '.join(sorted(got))}, expected {', '.join(m.expect)}"
    return True, worst, None
