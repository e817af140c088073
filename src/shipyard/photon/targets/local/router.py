"""The local endpoint: one HAProxy per service+env, steered through its runtime API.

The backend has two server slots, `a` and `b`; the live release holds one and the new release
takes the other. Weights move with `set weight` over the admin socket, with no reload
(https://docs.haproxy.org/2.6/management.html#9.3). Each request on a kept-alive client
connection is balanced on its own (no `prefer-last-server`), so a shift takes effect at once.

Zero dropped requests: `retry-on conn-failure empty-response` with `option redispatch` resends a
request that met a closed or refused connection to the other server, and a release is drained
(weight 0, then `state drain` until it has no sessions, then `maint`) before it is stopped.

The config on disk always holds the current addresses and weights, so a router that died is
started again as it was. The admin socket lives beside it unless that path is longer than a
unix socket allows (108 bytes); then in a private 0700 folder under the temp dir.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from shipyard.errors import ConfigError, ShipyardError, TransientError
from shipyard.store import write_atomic

SLOTS = ("a", "b")
PARKED = "127.0.0.1:9"  # the discard port: a slot with no release points here, in maintenance


def socket_path(router_dir: Path) -> Path:
    here = router_dir.resolve() / "admin.sock"
    if len(str(here)) < 100:
        return here
    private = Path(tempfile.gettempdir()) / f"photon-{os.getuid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    os.chmod(private, 0o700)
    return private / (hashlib.sha256(str(here).encode()).hexdigest()[:20] + ".sock")


def render(port: int, health_path: str, servers: dict[str, tuple[str, int]], sock: Path) -> str:
    """haproxy.cfg: `servers` maps slot -> (host:port or '', weight)."""
    lines = [
        "# written by photon; runtime changes are written back here",
        "global",
        f"  stats socket {sock} mode 600 level admin",
        "  stats timeout 10s",
        "  nbthread 1",
        "  maxconn 4096",  # each connection costs 2 fds; stays under common `ulimit -n` values
        "defaults",
        "  mode http",
        "  timeout connect 2s",
        "  timeout client 60s",
        "  timeout server 60s",
        "  timeout http-keep-alive 10s",
        "  retries 3",
        "  option redispatch 1",
        "  retry-on conn-failure empty-response response-timeout",
        "frontend photon",
        f"  bind 127.0.0.1:{port}",
        "  default_backend releases",
        "backend releases",
        "  balance roundrobin",
        "  http-reuse always",
        f"  option httpchk GET {health_path}",
    ]
    for slot in SLOTS:
        addr, weight = servers.get(slot, ("", 0))
        state = "" if addr else " disabled"
        lines.append(f"  server {slot} {addr or PARKED} weight {weight} check inter 1s downinter 100ms fall 2 rise 1{state}")
    return "\n".join(lines) + "\n"


class Router:
    def __init__(self, router_dir: Path, binary: str = "haproxy") -> None:
        self.dir = router_dir
        self.cfg = router_dir / "haproxy.cfg"
        self.sock = socket_path(router_dir)
        self.binary = binary

    def _haproxy(self) -> str:
        # /usr/sbin is not on every user's PATH; Debian installs haproxy there.
        found = shutil.which(self.binary) or shutil.which(self.binary, path="/usr/sbin:/usr/local/sbin")
        if not found:
            raise ConfigError(f"{self.binary} is not installed: the local target routes through HAProxy",
                              hint="run `make services` (apt-get install -y haproxy) or set SHIPYARD_PHOTON__HAPROXY")
        return found

    def write(self, port: int, health_path: str, servers: dict[str, tuple[str, int]]) -> None:
        write_atomic(self.cfg, render(port, health_path, servers, self.sock))

    def argv(self, old_pid: int | None = None) -> list[str]:
        out = [self._haproxy(), "-f", str(self.cfg), "-db"]
        if old_pid:
            out += ["-sf", str(old_pid)]
        return out

    def check_config(self) -> None:
        res = subprocess.run([self._haproxy(), "-c", "-q", "-f", str(self.cfg)], capture_output=True, text=True)
        if res.returncode != 0:
            raise ShipyardError(f"haproxy rejected {self.cfg}: {res.stderr.strip()[:500]}")

    def command(self, cmd: str, timeout: float = 5.0) -> str:
        """One runtime API command; its answer."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(str(self.sock))
                s.sendall(cmd.encode() + b"\n")
                chunks = []
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    chunks.append(b)
        except OSError as exc:
            raise TransientError(f"the router's admin socket did not answer ({type(exc).__name__})",
                                 hint="the next photon command restarts the router") from None
        out = b"".join(chunks).decode()
        if out.strip() and not cmd.startswith("show") and "No such" in out:
            raise ShipyardError(f"router: {cmd!r}: {out.strip()}")
        return out

    def wait_ready(self, alive: "Callable[[], bool]", timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive():
            try:
                if "Name: HAProxy" in self.command("show info", timeout=1):
                    return
            except TransientError:
                pass
            time.sleep(0.05)
        log = self.dir / "haproxy.log"
        lines = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
        alerts = [ln.split(" : ", 1)[-1] for ln in lines if ln.startswith("[ALERT]")]
        first = alerts[0] if alerts else (lines[-1] if lines else "")
        busy = "Address already in use" in first
        raise ShipyardError(f"the router (haproxy) did not come up{': ' + first if first else ''}",
                            hint="another process holds that port: pick another local.port, or leave it out for a free one"
                            if busy else f"see {log}")

    def point(self, slot: str, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.command(f"set server releases/{slot} addr {host} port {port}")

    def weight(self, slot: str, weight: int) -> None:
        self.command(f"set server releases/{slot} weight {weight}")

    def state(self, slot: str, state: str) -> None:
        self.command(f"set server releases/{slot} state {state}")

    def stats(self) -> dict[str, dict[str, str]]:
        """`show stat` rows of the backend's servers: slot -> column -> value."""
        text = self.command("show stat")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if not lines or not lines[0].startswith("# "):
            return {}
        cols = lines[0][2:].split(",")
        out = {}
        for ln in lines[1:]:
            row = dict(zip(cols, ln.split(",")))
            if row.get("pxname") == "releases" and row.get("svname") in SLOTS:
                out[row["svname"]] = row
        return out

    def counters(self, slot: str) -> tuple[int, int]:
        """(requests answered or failed, errors: 5xx + connection and response errors)."""
        row = self.stats().get(slot, {})

        def n(k: str) -> int:
            v = row.get(k, "")
            return int(v) if v.isdigit() else 0

        answered = sum(n(k) for k in ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"))
        failed = n("econ") + n("eresp")
        return answered + failed, n("hrsp_5xx") + failed

    def is_up(self, slot: str) -> bool:
        """The router's own health check sees the slot UP (traffic can be sent to it)."""
        return self.stats().get(slot, {}).get("status", "").startswith("UP")

    def sessions(self, slot: str) -> int:
        v = self.stats().get(slot, {}).get("scur", "0")
        return int(v) if v.isdigit() else 0
