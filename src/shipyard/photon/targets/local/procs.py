"""Processes photon starts on this machine, found again after any crash.

Every process photon starts (the router, each release's supervisor and the app under it) runs
in its own session/process group and carries two environment variables:
`PHOTON_OWNER=<state root>|<service>|<env>` and `PHOTON_ROLE=router|release:<id>`. A pidfile
is written too, but a photon SIGKILLed between fork and the pidfile write would lose it, so
`tagged()` also scans /proc/*/environ: what carries our owner tag and is not in the state is
an orphan, and the next command stops it. Environment tags survive `exec` and are inherited by
the app's own children, so a whole tree is found.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

OWNER = "PHOTON_OWNER"
ROLE = "PHOTON_ROLE"


def owner_tag(root: Path, service: str, env: str) -> str:
    return f"{root.resolve()}|{service}|{env}"


def _proc_state(pid: int) -> tuple[str, int] | None:
    """(state letter, process group) from /proc/<pid>/stat, None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(")") + 2:].split()
    return fields[0], int(fields[2])


def group(pid: int) -> int | None:
    """The process group of a live pid."""
    st = _proc_state(pid)
    return st[1] if st and st[0] not in ("Z", "X") else None


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    st = _proc_state(pid)
    return st is not None and st[0] not in ("Z", "X")


def tags_of(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        if item.startswith((b"PHOTON_OWNER=", b"PHOTON_ROLE=")):
            k, _, v = item.decode("utf-8", "replace").partition("=")
            out[k] = v
    return out


def tagged(owner: str) -> dict[int, str]:
    """Live processes carrying `owner`: pid -> role."""
    found: dict[int, str] = {}
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        env = tags_of(pid)
        if env.get(OWNER) == owner and alive(pid):
            found[pid] = env.get(ROLE, "")
    return found


def spawn(argv: list[str], *, env: dict[str, str], owner: str, role: str, cwd: Path | None = None,
          output: Path | None = None, pidfile: Path | None = None) -> int:
    """Start `argv` in a new session (its own process group), tagged; returns its pid."""
    full = {**env, OWNER: owner, ROLE: role}
    out = open(output, "ab") if output else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(argv, env=full, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    finally:
        if output:
            out.close()  # type: ignore[union-attr]
    if pidfile:
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(str(proc.pid))
    # Popen's handle is dropped on purpose: the process outlives this command. Reap it if it
    # exits while we run so it does not linger as a zombie (see reap()).
    _children.add(proc.pid)
    return proc.pid


_children: set[int] = set()


def reap() -> None:
    for pid in list(_children):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _children.discard(pid)


def _group_members(pgid: int) -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = _proc_state(int(entry.name))
            if st and st[1] == pgid and st[0] not in ("Z", "X"):
                out.append(int(entry.name))
    return out


def stop(pids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM each pid's process group, wait up to `timeout`, then SIGKILL what is left."""
    groups = set()
    for pid in pids:
        st = _proc_state(pid)
        if st and st[0] not in ("Z", "X"):
            groups.add(st[1])
    for g in groups:
        try:
            os.killpg(g, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap()
        if not any(_group_members(g) for g in groups):
            return
        time.sleep(0.05)
    for g in groups:
        try:
            os.killpg(g, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    time.sleep(0.05)
    reap()


def stop_role(owner: str, role: str, timeout: float = 10.0) -> list[int]:
    """Stop every process of `owner` with `role` (a release or the router); their pids."""
    pids = [p for p, r in tagged(owner).items() if r == role]
    if pids:
        stop(pids, timeout)
    return pids
