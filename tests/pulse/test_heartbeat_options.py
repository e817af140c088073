"""Heartbeat options honoured against real servers (a TLS server with a CA the test makes, a
forward proxy, IPv4/IPv6 listeners), or refused with file:line (issue 18, item 1)."""

from __future__ import annotations

import socket
import ssl
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest

from shipyard.pulse.config import parse_text
from shipyard.pulse.model import ConfigProblem
from shipyard.pulse.options import OPTIONS, REFUSED
from tests.pulse.test_checks import check
from tests.pulse.tlsutil import TestCA, TlsServer


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca = TestCA(folder)
    return {"ca": ca, "server": ca.issue("server"), "other": ca.issue("other", sans=("other.example",)),
            "client": ca.issue("client", client=True, sans=())}


@pytest.fixture
def tls_server(pki):
    started = []

    def start(**kw) -> TlsServer:
        s = TlsServer(pki[kw.pop("cert", "server")], **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def mon(url: str, extra: str = "") -> str:
    return f"- type: http\n  id: t\n  urls: ['{url}']\n  schedule: '@every 1s'\n  timeout: 3s\n{extra}"


def test_verification_modes_with_a_self_signed_ca(pki, tls_server):
    srv = tls_server()
    ok, _, _, err = check(mon(srv.url))  # the system trust store does not know our CA
    assert not ok and "CERTIFICATE_VERIFY_FAILED" in err
    assert check(mon(srv.url, "  ssl.verification_mode: none\n"))[0]
    assert check(mon(srv.url, f"  ssl.certificate_authorities: ['{pki['ca'].path}']\n"))[0]
    inline = "  ssl:\n    certificate_authorities:\n      - |\n" + "".join(
        f"        {line}\n" for line in pki["ca"].pem.splitlines())
    assert check(mon(srv.url, inline))[0]  # inline PEM, as Heartbeat allows

    wrong_name = tls_server(cert="other")  # issued for other.example, reached as 127.0.0.1
    ca = f"  ssl.certificate_authorities: ['{pki['ca'].path}']\n"
    ok, _, _, err = check(mon(wrong_name.url, ca))
    assert not ok and "IP address mismatch" in err
    assert check(mon(wrong_name.url, ca + "  ssl.verification_mode: certificate\n"))[0]
    assert not check(mon(wrong_name.url, ca + "  ssl.verification_mode: strict\n"))[0]


def test_client_certificate(pki, tls_server):
    srv = tls_server(client_ca=pki["ca"].path)
    ca = f"  ssl.certificate_authorities: ['{pki['ca'].path}']\n"
    ok, _, _, err = check(mon(srv.url, ca))
    assert not ok
    c = pki["client"]
    assert check(mon(srv.url, ca + f"  ssl.certificate: '{c.cert}'\n  ssl.key: '{c.key}'\n"))[0]
    with pytest.raises(ConfigProblem, match="needs both ssl.certificate and ssl.key"):
        parse_text(mon(srv.url, f"  ssl.certificate: '{c.cert}'\n"), "t.yml")


def test_supported_protocols(pki, tls_server):
    srv = tls_server(max_version=ssl.TLSVersion.TLSv1_2)
    ca = f"  ssl.certificate_authorities: ['{pki['ca'].path}']\n"
    assert check(mon(srv.url, ca + "  ssl.supported_protocols: [TLSv1.2]\n"))[0]
    ok, _, _, err = check(mon(srv.url, ca + "  ssl.supported_protocols: [TLSv1.3]\n"))
    assert not ok
    with pytest.raises(ConfigProblem, match=r"t.yml:6: ssl.supported_protocols: 'TLSv1.0' is not supported"):
        parse_text(mon(srv.url, "  ssl.supported_protocols: [TLSv1.0]\n"), "t.yml")


class Proxy(BaseHTTPRequestHandler):
    """A forward HTTP proxy: GET with an absolute URL, fetched and relayed."""

    hits: list[str] = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        Proxy.hits.append(self.path + " " + str(self.headers.get("X-Proxy-Token")))
        with urllib.request.urlopen(self.path, timeout=5) as r:  # noqa: S310 - test proxy to loopback
            body = r.read()
            self.send_response(r.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_proxy_url_and_headers(backend, http_server):
    proxy = http_server(Proxy)
    Proxy.hits.clear()
    ok, _, status, err = check(mon(backend.url + "/via", f"  proxy_url: {proxy.url}\n  proxy_headers: {{X-Proxy-Token: t1}}\n"))
    assert (ok, status, err) == (True, 200, None)
    assert Proxy.hits == [f"{backend.url}/via t1"]
    assert backend.hits == 1
    ok, _, _, err = check(mon(backend.url, "  proxy_url: http://127.0.0.1:9\n"))
    assert not ok  # the proxy is really used: a dead one fails the check


def _v6_listener() -> socket.socket:
    s = socket.socket(socket.AF_INET6)
    s.bind(("::1", 0))
    s.listen(8)

    def serve():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            c.recv(1024)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    return s


def test_ipv4_and_ipv6_options(backend, tcp_listener):
    v6 = _v6_listener()
    try:
        url6 = f"http://[::1]:{v6.getsockname()[1]}/"
        assert check(mon(url6))[0]
        ok, _, _, err = check(mon(url6, "  ipv6: false\n"))
        assert not ok
        assert check(mon(backend.url))[0]
        assert not check(mon(backend.url, "  ipv4: false\n"))[0]
        tcp = f"- type: tcp\n  id: t\n  hosts: ['127.0.0.1:{tcp_listener.port}']\n  schedule: '@every 1s'\n  timeout: 1s\n"
        assert check(tcp)[0] and not check(tcp + "  ipv4: false\n")[0]
        with pytest.raises(ConfigProblem, match="ipv4 and ipv6 are both false"):
            parse_text(mon(backend.url, "  ipv4: false\n  ipv6: false\n"), "t.yml")
    finally:
        v6.close()


def test_mode_all_checks_every_address(tcp_listener):
    tcp = f"- type: tcp\n  id: t\n  hosts: ['localhost:{tcp_listener.port}']\n  schedule: '@every 1s'\n  timeout: 1s\n"
    assert check(tcp + "  mode: all\n")[0]
    tcp_listener.stop()
    ok, _, _, err = check(tcp + "  mode: all\n")
    assert not ok and f"localhost:{tcp_listener.port} (127.0.0.1): connection failed" in err
    with pytest.raises(ConfigProblem, match="t.yml:6: mode: all is not supported for http"):
        parse_text(mon("http://h/", "  mode: all\n"), "t.yml")


def test_json_conditions_as_heartbeat_writes_them(backend):
    ok, _, _, err = check(mon(backend.url + "/x", "  check.response.json:\n"
                              "    - {description: has db, condition: {has_fields: [db, path]}}\n"
                              "    - {description: path, condition: {equals: {path: /x}}}\n"))
    assert (ok, err) == (True, None)
    ok, _, _, err = check(mon(backend.url, "  check.response.json:\n"
                              "    - {description: uptime, condition: {has_fields: [uptime]}}\n"))
    assert not ok and err.endswith("JSON check failed: uptime")
    with pytest.raises(ConfigProblem, match=r"t.yml:7: check.response.json 'expression' \(CEL\) is not supported"):
        parse_text(mon("http://h/", "  check.response.json:\n    - {description: x, expression: 'a == 1'}\n"), "t.yml")


@pytest.mark.parametrize("key", sorted(k for k, (what, _) in OPTIONS.items() if what == REFUSED and not k.endswith(".")))
def test_refused_options_name_file_line_and_reason(key):
    with pytest.raises(ConfigProblem) as e:
        parse_text(mon("https://h/", f"  {key}: x\n"), "t.yml")
    assert str(e.value).startswith(f"t.yml:6: {key} is not supported by pulse: ")
