"""`type: dns` against a resolver stand-in on loopback (a real UDP DNS server answering from a
small zone), and `type: icmp` refused at validate time where unprivileged ICMP is not allowed
(issue 18, item 6)."""

from __future__ import annotations

import socket
import threading

import dns.message
import dns.rcode
import dns.rrset
import pytest

from shipyard.pulse.config import parse_text
from shipyard.pulse.model import ConfigProblem
from shipyard.pulse.kinds import icmp_available, icmp_refusal
from tests.pulse.test_checks import check

ZONE = {("billing.internal.", "A"): ["10.1.2.3", "10.1.2.4"], ("billing.internal.", "TXT"): ['"v=ok"'],
        ("www.internal.", "CNAME"): ["billing.internal."]}


class Resolver:
    """A DNS server on 127.0.0.1 answering from ZONE (NXDOMAIN otherwise)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries: list[str] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            q = dns.message.from_wire(data)
            r = dns.message.make_response(q)
            question = q.question[0]
            name, rtype = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
            self.queries.append(f"{name} {rtype}")
            values = ZONE.get((name, rtype))
            if values:
                r.answer.append(dns.rrset.from_text_list(name, 60, "IN", rtype, values))
            elif not any(n == name for n, _ in ZONE):
                r.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(r.to_wire(), addr)


@pytest.fixture
def resolver():
    r = Resolver()
    yield r
    r.sock.close()


def mon(resolver: Resolver, host: str, extra: str = "") -> str:
    return (f"- type: dns\n  id: d\n  hosts: ['{host}']\n  schedule: '@every 1s'\n  timeout: 2s\n"
            f"  dns.resolver: '127.0.0.1:{resolver.port}'\n{extra}")


def test_dns_resolves_and_checks_expected_values(resolver):
    assert check(mon(resolver, "billing.internal"))[0]
    assert check(mon(resolver, "billing.internal", "  dns.expect: [10.1.2.4]\n"))[0]
    ok, _, _, err = check(mon(resolver, "billing.internal", "  dns.expect: [10.9.9.9]\n"))
    assert not ok and err == "billing.internal A: 10.1.2.3, 10.1.2.4, expected 10.9.9.9"
    assert check(mon(resolver, "www.internal", "  dns.type: CNAME\n  dns.expect: billing.internal\n"))[0]
    assert check(mon(resolver, "billing.internal", "  dns.type: txt\n  dns.expect: v=ok\n"))[0]
    ok, _, _, err = check(mon(resolver, "nope.internal"))
    assert not ok and err == "nope.internal: no such name (NXDOMAIN)"
    ok, _, _, err = check(mon(resolver, "billing.internal", "  dns.type: MX\n"))
    assert not ok and err == "billing.internal: no MX record"
    assert "billing.internal. A" in resolver.queries  # the stand-in really answered


def test_dns_resolver_that_does_not_answer():
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        ok, _, _, err = check(f"- type: dns\n  id: d\n  hosts: ['x.internal']\n  schedule: '@every 1s'\n"
                              f"  timeout: 500ms\n  dns.resolver: '127.0.0.1:{silent.getsockname()[1]}'\n")
        assert not ok and "no answer within 0.5s" in err
    finally:
        silent.close()


def test_icmp_is_refused_at_validate_time_with_the_reason_where_the_system_forbids_it():
    reason = icmp_available()
    text = "- type: icmp\n  id: gw\n  hosts: ['127.0.0.1']\n  schedule: '@every 5s'\n"
    if reason is None:  # this machine allows unprivileged ICMP: the echo really runs
        assert check(text)[0]
    else:
        with pytest.raises(ConfigProblem) as e:
            parse_text(text, "net.yml")
        assert e.value.line == 1 and "icmp monitors cannot run here: net.ipv4.ping_group_range is" in e.value.message
    # The decision itself, both ways.
    assert icmp_refusal("1 0", {0}) is not None and "ping_group_range is '1 0'" in icmp_refusal("1 0", {0})
    assert icmp_refusal("0 2147483647", {1000}) is None
    assert icmp_refusal("100 200", {1000, 150}) is None
