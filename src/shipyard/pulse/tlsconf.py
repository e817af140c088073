"""Heartbeat's `ssl.*` options -> an ssl.SSLContext, one per distinct set of options.

verification_mode (https://www.elastic.co/guide/en/beats/heartbeat/current/configuration-ssl.html):
- none: no check at all (an expired or self-signed certificate passes);
- certificate: the chain must lead to a trusted CA, the host name is not checked;
- full: chain and host name (the default);
- strict: as full, and the name must be in the Subject Alternative Name (no CN fallback),
  with X.509 strict checks.
`certificate_authorities` replaces the system trust store (as Heartbeat does); a file path or
an inline PEM block both work, for the client certificate and key too.
"""

from __future__ import annotations

import functools
import os
import ssl
import tempfile

import certifi

from shipyard.pulse.model import TlsOptions

_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def _is_pem(v: str) -> bool:
    return "-----BEGIN" in v


def _load_client_cert(ctx: ssl.SSLContext, cert: str, key: str, password: str | None) -> None:
    # load_cert_chain reads files only: inline PEM goes through a private temp file that is
    # removed at once.
    paths, made = [], []
    try:
        for v in (cert, key):
            if _is_pem(v):
                fd, p = tempfile.mkstemp(prefix="pulse-tls-", suffix=".pem")
                with os.fdopen(fd, "w") as f:
                    f.write(v)
                made.append(p)
                paths.append(p)
            else:
                paths.append(os.path.expanduser(v))
        ctx.load_cert_chain(paths[0], paths[1], password=password)
    finally:
        for p in made:
            os.unlink(p)


@functools.lru_cache(maxsize=256)
def ssl_context(opts: TlsOptions) -> ssl.SSLContext:
    """One context per distinct options (loading a CA bundle costs ~25 ms: never per check)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if opts.verification_mode == "none":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        if opts.certificate_authorities:
            for ca in opts.certificate_authorities:
                if _is_pem(ca):
                    ctx.load_verify_locations(cadata=ca)
                else:
                    ctx.load_verify_locations(cafile=os.path.expanduser(ca))
        else:
            ctx.load_verify_locations(cafile=certifi.where())
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = opts.verification_mode in ("full", "strict")
        if opts.verification_mode == "strict":
            ctx.hostname_checks_common_name = False
            ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    if opts.supported_protocols:
        versions = sorted(_VERSIONS[p] for p in opts.supported_protocols)
        ctx.minimum_version, ctx.maximum_version = versions[0], versions[-1]
    if opts.certificate and opts.key:
        _load_client_cert(ctx, opts.certificate, opts.key, opts.key_passphrase)
    return ctx


def cert_not_after(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> float | None:
    """The peer certificate's expiry (epoch seconds), when the certificate was verified."""
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    if not cert or "notAfter" not in cert:
        return None
    return float(ssl.cert_time_to_seconds(str(cert["notAfter"])))
