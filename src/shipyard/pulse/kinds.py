"""Per-type monitor options: what an http or a tcp monitor takes besides the common keys."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from shipyard.pulse import fields as f
from shipyard.pulse.fields import Fields


def shown_url(url: str) -> str:
    """A URL as an error message may show it: no credentials, even in a malformed URL."""
    url = split_userinfo(url)[0]
    return "***@" + url.rsplit("@", 1)[1] if "@" in url else url


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """`http://user:pw@host/` -> (`http://host/`, (user, pw)): the URL that is shown and
    recorded never holds the credentials."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, pw = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), (unquote(user), unquote(pw))


def http(fx: Fields, targets: list[str], secrets: list[str]) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    clean, auth = [], []
    for t in targets:
        if not re.match(r"^https?://[^/\s]+", t):
            raise fx.problem("urls", f"{shown_url(t)!r} is not an http(s) URL",
                             "write the full URL, e.g. http://service:8080/health")
        url, creds = split_userinfo(t)
        clean.append(url)
        auth.append(creds)
        if creds:
            secrets += [c for c in creds if c]
    kw["targets"], kw["target_auth"] = tuple(clean), tuple(auth)
    if fx.get("ssl.enabled", True) is False and any(u.startswith("https:") for u in clean):
        raise fx.problem("ssl.enabled", "ssl.enabled: false with an https URL", "use an http:// URL, or drop ssl.enabled")
    method = str(fx.get("check.request.method", "GET")).upper()
    if method not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        raise fx.problem("check.request.method", f"HTTP method {method!r} is not valid")
    kw["method"] = method
    if fx.has("check.request.headers"):
        kw["headers"] = f.pairs(fx.get("check.request.headers"), fx.file, fx.at("check.request.headers"),
                                "check.request.headers")
    if fx.has("check.request.body"):
        b = fx.get("check.request.body")
        if isinstance(b, str):
            kw["body"] = b
        else:  # a mapping or list is sent as JSON, labelled so unless the file says otherwise
            kw["body"] = json.dumps(b)
            if not any(k.lower() == "content-type" for k, _ in kw.get("headers", ())):
                kw["headers"] = (*kw.get("headers", ()), ("Content-Type", "application/json"))
    if fx.has("check.response.status"):
        st = fx.get("check.response.status")
        st = [st] if isinstance(st, int) and not isinstance(st, bool) else st
        if not isinstance(st, list) or not st or not all(
                isinstance(x, int) and not isinstance(x, bool) and 100 <= x <= 599 for x in st):
            raise fx.problem("check.response.status", "check.response.status must be a list of HTTP status codes",
                             "e.g. check.response.status: [200, 204]")
        kw["status"] = tuple(st)
    if fx.has("check.response.body"):
        pats = f.str_list(fx.get("check.response.body"))
        if not pats:
            raise fx.problem("check.response.body", "check.response.body must be a regex or a list of regexes")
        kw["body_patterns"] = tuple(f.pattern(p, fx.file, fx.at("check.response.body")) for p in pats)
    if fx.has("check.response.headers"):
        kw["response_headers"] = f.pairs(fx.get("check.response.headers"), fx.file,
                                         fx.at("check.response.headers"), "check.response.headers")
    if fx.has("check.response.json"):
        kw["json_checks"] = f.json_checks(fx.get("check.response.json"), fx.file, fx.at("check.response.json"))
    kw["max_redirects"] = f.whole(fx.get("max_redirects", 0), fx.file, fx.at("max_redirects"), "max_redirects")
    if fx.has("username"):
        kw["username"] = str(fx.get("username"))
        kw["password"] = str(fx.get("password", ""))
        secrets.append(kw["password"])
    if fx.has("proxy_url"):
        proxy = str(fx.get("proxy_url"))
        if not re.match(r"^(https?|socks5h?)://[^/\s]+", proxy):
            raise fx.problem("proxy_url", f"proxy_url {shown_url(proxy)!r} is not a proxy URL",
                             "e.g. http://proxy.internal:3128")
        kw["proxy_url"] = proxy
        secrets += [c for c in (split_userinfo(proxy)[1] or ()) if c]
    if fx.has("proxy_headers"):
        kw["proxy_headers"] = f.pairs(fx.get("proxy_headers"), fx.file, fx.at("proxy_headers"), "proxy_headers")
    if fx.get("mode", "any") == "all":
        raise fx.problem("mode", "mode: all is not supported for http monitors",
                         "pulse checks the address a URL resolves to first; list one URL per address, "
                         "or use a tcp monitor with mode: all")
    return kw


def tcp(fx: Fields, targets: list[str]) -> dict[str, Any]:
    ports = fx.get("ports")
    if ports is not None and not isinstance(ports, list):
        ports = [ports]
    full = []
    for t in targets:
        if re.match(r"^.+:\d+$", t):
            full.append(t)
        elif ports:
            full.extend(f"{t}:{p}" for p in ports)
        else:
            raise fx.problem("hosts", f"tcp host {t!r} has no port", "write host:port, or add ports: [5432]")
    for t in full:
        if not 0 < int(t.rsplit(":", 1)[1]) < 65536:
            raise fx.problem("hosts", f"port in {t!r} is out of range")
    for k in ("check.request.method", "check.response.status", "check.response.body"):
        if fx.has(k):
            raise fx.problem(k, f"{k} applies to http monitors, not tcp", "tcp monitors take check.send / check.receive")
    kw: dict[str, Any] = {"targets": tuple(full)}
    if fx.has("check.send"):
        kw["send"] = str(fx.get("check.send"))
    if fx.has("check.receive"):
        kw["receive"] = str(fx.get("check.receive"))
    return kw


_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def push(fx: Fields, secrets: list[str]) -> dict[str, Any]:
    """`type: push` (a dead man's switch): the cron POSTs /api/push/<token> at least every
    `every`; a ping later than `every + grace` is missed. Alerts after one missed ping unless
    the file says otherwise."""
    token = fx.get("token")
    if not isinstance(token, str) or not _TOKEN_RE.match(token):
        raise fx.problem("token" if fx.has("token") else None,
                         "a push monitor needs a token of 16-128 letters, digits, '-' or '_'",
                         "e.g. token: ${BACKUP_PUSH_TOKEN} (generate one with `openssl rand -hex 16`)")
    secrets.append(token)
    if not fx.has("every"):
        raise fx.problem(None, "a push monitor needs 'every' (how often the cron pings)", "e.g. every: 1h")
    for k in ("urls", "hosts", "schedule"):
        if fx.has(k):
            raise fx.problem(k, f"a push monitor takes no {k!r}", "pushes come in; use every and grace")
    kw: dict[str, Any] = {"targets": (), "push_token": token,
                          "push_every": f.duration(fx.get("every"), fx.file, fx.at("every"), "every"),
                          "grace": f.duration(fx.get("grace", "30s"), fx.file, fx.at("grace"), "grace", positive=False)}
    if not fx.has("alert.failure_threshold"):
        kw["failure_threshold"] = 1
    if not fx.has("alert.success_threshold"):
        kw["success_threshold"] = 1
    return kw


RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "TXT", "SRV", "PTR", "SOA", "CAA")


def dns_(fx: Fields, targets: list[str]) -> dict[str, Any]:
    """`type: dns`: hosts are names; dns.type (A), dns.expect (values that must be among the
    answers), dns.resolver (host[:port], default the system's)."""
    rtype = str(fx.get("dns.type", "A")).upper()
    if rtype not in RECORD_TYPES:
        raise fx.problem("dns.type", f"dns.type {rtype!r} is not supported", f"use one of {', '.join(RECORD_TYPES)}")
    kw: dict[str, Any] = {"targets": tuple(targets), "record_type": rtype}
    if fx.has("dns.expect"):
        exp = f.str_list(fx.get("dns.expect"))
        if not exp:
            raise fx.problem("dns.expect", "dns.expect must be a value or a list of values")
        kw["expect"] = tuple(exp)
    if fx.has("dns.resolver"):
        res = str(fx.get("dns.resolver"))
        if not re.match(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$", res):
            raise fx.problem("dns.resolver", f"dns.resolver {res!r} is not host[:port]", "e.g. 10.0.0.2 or 10.0.0.2:5353")
        kw["resolver"] = res
    return kw


PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")


def icmp_refusal(range_text: str | None, groups: set[int]) -> str | None:
    """Why unprivileged ICMP is not available (None: it is), from ping_group_range's text."""
    if range_text is None:
        return "this system has no net.ipv4.ping_group_range (not Linux?)"
    lo, hi = (int(x) for x in range_text.split())
    if any(lo <= g <= hi for g in groups):
        return None
    return (f"net.ipv4.ping_group_range is '{lo} {hi}', which does not include this process's groups "
            f"({', '.join(str(g) for g in sorted(groups))}); allow it with "
            f"`sysctl -w net.ipv4.ping_group_range='0 2147483647'` or use a tcp monitor")


def icmp_available() -> str | None:
    try:
        text = PING_GROUP_RANGE.read_text()
    except OSError:
        text = None
    return icmp_refusal(text, {os.getgid(), *os.getgroups()})


def icmp(fx: Fields, targets: list[str], refusal: str | None) -> dict[str, Any]:
    """`type: icmp`: refused here, with the reason, when unprivileged ICMP is not allowed."""
    if refusal is not None:
        raise fx.problem("type", f"icmp monitors cannot run here: {refusal}")
    return {"targets": tuple(targets)}
