"""Every Heartbeat monitor option and what pulse does with it: honoured, refused, or ignored.

docs/pulse.md's option table is this table; `refused` options stop the file at validate time
with file:line and the reason, `ignored` ones load (so a Heartbeat file works unchanged) and
have no effect, for the reason given. Anything not listed is an unknown key (did-you-mean).
Heartbeat's options: https://www.elastic.co/guide/en/beats/heartbeat/current/monitor-options.html
"""

from __future__ import annotations

HONOURED = "honoured"
REFUSED = "refused"
IGNORED = "ignored"

_DOC_SHAPING = "shapes Heartbeat's Elasticsearch documents; pulse writes no documents"

# key or prefix (ending in '.') -> (what pulse does, why / how)
OPTIONS: dict[str, tuple[str, str]] = {
    "type": (HONOURED, "http, tcp, tls, dns, icmp (unprivileged ICMP only; refused where the system forbids it), push"),
    "id": (HONOURED, "names the monitor in alerts, history, API and badges"),
    "name": (HONOURED, "shown on the page and in notices"),
    "enabled": (HONOURED, "false: the monitor is not run"),
    "schedule": (HONOURED, "@every <duration> or cron with seconds; shorter than pulse.min_interval is refused"),
    "timeout": (HONOURED, "per check"),
    "hosts": (HONOURED, "tcp/tls/dns/icmp targets (http accepts them as URLs too)"),
    "urls": (HONOURED, "http targets; user:password@ is used as basic auth and never shown"),
    "ports": (HONOURED, "tcp/tls: hosts without a port get each of these"),
    "mode": (HONOURED, "any: one address of a host name; all: every address (tcp, tls, icmp); "
                       "http accepts any only"),
    "ipv4": (HONOURED, "false: no IPv4 addresses are used"),
    "ipv6": (HONOURED, "false: no IPv6 addresses are used"),
    "username": (HONOURED, "http basic auth"),
    "password": (HONOURED, "http basic auth; never shown"),
    "max_redirects": (HONOURED, "default 0 (redirects are not followed), as in Heartbeat"),
    "proxy_url": (HONOURED, "http: the request goes through this HTTP proxy"),
    "proxy_headers": (HONOURED, "http: sent to the proxy on CONNECT"),
    "check.request.method": (HONOURED, ""),
    "check.request.headers": (HONOURED, ""),
    "check.request.body": (HONOURED, "a string, or a mapping/list sent as JSON"),
    "check.response.status": (HONOURED, "a list of accepted codes"),
    "check.response.headers": (HONOURED, "exact values"),
    "check.response.body": (HONOURED, "RE2 regexes on the first pulse.max_body_bytes of the body; any one matches"),
    "check.response.json": (HONOURED, "conditions equals, contains, regexp, has_fields, range; "
                                      "`expression` (CEL) is refused"),
    "check.send": (HONOURED, "tcp"),
    "check.receive": (HONOURED, "tcp"),
    "ssl.enabled": (HONOURED, "false on an https URL is refused"),
    "ssl.verification_mode": (HONOURED, "none, certificate, full, strict"),
    "ssl.certificate_authorities": (HONOURED, "PEM files or inline PEM"),
    "ssl.certificate": (HONOURED, "client certificate (path or inline PEM)"),
    "ssl.key": (HONOURED, "client key (path or inline PEM)"),
    "ssl.key_passphrase": (HONOURED, "never shown"),
    "ssl.supported_protocols": (HONOURED, "TLSv1.2, TLSv1.3 (older ones are refused: OpenSSL here disables them)"),
    "ssl.cipher_suites": (REFUSED, "Go cipher-suite names do not map to OpenSSL's; remove it"),
    "ssl.curve_types": (REFUSED, "not settable per connection in Python's ssl module; remove it"),
    "ssl.renegotiation": (REFUSED, "TLS renegotiation is not offered by Python's ssl module; remove it"),
    "ssl.ca_trusted_fingerprint": (REFUSED, "not supported; give the CA in ssl.certificate_authorities"),
    "ssl.ca_sha256": (REFUSED, "certificate pinning is not supported; give the CA in ssl.certificate_authorities"),
    "response.include_body": (IGNORED, "pulse records no response bodies"),
    "response.include_body_max_bytes": (IGNORED, "pulse records no response bodies (pulse.max_body_bytes caps what is read)"),
    "response.include_headers": (IGNORED, "pulse records no response headers"),
    "wait": (IGNORED, "icmp: the timeout bounds the wait"),
    "dns.type": (HONOURED, "pulse, dns: the record type (A)"),
    "dns.expect": (HONOURED, "pulse, dns: values that must be among the answers"),
    "dns.resolver": (HONOURED, "pulse, dns: host[:port] of the resolver (default: the system's)"),
    "tags": (IGNORED, _DOC_SHAPING),
    "fields": (IGNORED, _DOC_SHAPING),
    "fields_under_root": (IGNORED, _DOC_SHAPING),
    "processors": (IGNORED, _DOC_SHAPING),
    "data_stream": (IGNORED, _DOC_SHAPING),
    "index": (IGNORED, _DOC_SHAPING),
    "pipeline": (IGNORED, _DOC_SHAPING),
    "keep_null": (IGNORED, _DOC_SHAPING),
    "service.": (IGNORED, "APM service linking; pulse has no APM"),
    "run_from.": (IGNORED, "names the location in documents; pulse runs where it is started"),
    "source.": (REFUSED, "browser (synthetics) monitors are not supported"),
    # pulse's own keys
    "alert.channel": (HONOURED, "pulse: the Slack channel (default pulse.channel)"),
    "alert.failure_threshold": (HONOURED, "pulse: failed checks in a row before 'down' (3)"),
    "alert.success_threshold": (HONOURED, "pulse: good checks in a row before 'resolved' (2)"),
    "alert.send_on_resolved": (HONOURED, "pulse: notice on recovery (true)"),
    "alert.reminder": (HONOURED, "pulse: repeat the 'down' notice this often"),
    "alert.reminder_interval": (HONOURED, "pulse: the same as alert.reminder"),
    "maintenance": (HONOURED, "pulse: daily or one-off windows"),
    "slow_threshold": (HONOURED, "pulse: 800ms, or {threshold: 800ms, checks: 5, stat: mean|p95}"),
    "token": (HONOURED, "pulse, push: the secret in POST /api/push/<token> (16-128 characters; never shown)"),
    "every": (HONOURED, "pulse, push: how often the cron pings"),
    "grace": (HONOURED, "pulse, push: how late a ping may be (30s)"),
    "cert_expiry_warn_days": (HONOURED, "pulse: days left that warn, default pulse.cert_warn_days [30, 7]"),
}


def lookup(key: str) -> tuple[str, str] | None:
    """The entry for a flattened key (`ssl.verification_mode`, `alert.channel`), if any."""
    if key in OPTIONS:
        return OPTIONS[key]
    for k, v in OPTIONS.items():
        if (k.endswith(".") and key.startswith(k)) or key.startswith(k + "."):
            return v
    return None


def known_keys() -> list[str]:
    return sorted(k.rstrip(".") for k in OPTIONS)
