"""The local target: releases as processes (or containers) behind one HAProxy per env."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from shipyard.errors import ConfigError, InputError, NotFoundError
from shipyard.photon.state import Release
from shipyard.photon.model import Deployment
from shipyard.photon.secrets import resolve
from shipyard.photon.targets.base import Ctx, Health, env_vars
from shipyard.photon.targets.local import docker, procs
from shipyard.photon.targets.local.router import SLOTS, Router
from shipyard.settings import PhotonSettings

# What a release inherits from photon's own environment; everything else (cloud credentials,
# tokens) stays out of the app. The file's vars and secrets are added on top.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH", "SYSTEMROOT")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(address: str, path: str, timeout: float) -> int:
    """Status of GET http://address/path; 0 when nothing answers."""
    host, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "photon-gate"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def last_exit(log: Path) -> str:
    """`exited with code N` from a release log's last lines, with its last stderr line if any."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 8192))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return "process exited"
    recs = []
    for ln in lines:
        try:
            recs.append(json.loads(ln))
        except ValueError:
            continue
    exits = [r for r in recs if r.get("event") == "exit"]
    said = [r["message"] for r in recs if r.get("stream") == "stderr" and r.get("message", "").strip()]
    text = str(exits[-1].get("message")) if exits else "process exited"
    return f"{text} (last stderr: {said[-1][:300]})" if said else text


class LocalTarget:
    name = "local"

    def __init__(self, settings: PhotonSettings) -> None:
        self.settings = settings

    def prepare(self, dep: Deployment) -> dict[str, str]:
        """Secrets resolved now: an unresolvable one fails before anything starts."""
        cwd = dep.local.cwd
        if cwd is not None:
            if not Path(cwd).is_absolute() and ".." in Path(cwd).parts:
                raise InputError(f"local.cwd {cwd!r} leaves the deployment file's folder",
                                 hint="use a folder below the file's, or an absolute path", field="local.cwd")
            if not (dep.base_dir / cwd).is_dir():
                raise InputError(f"local.cwd {cwd!r} is not a folder", field="local.cwd")
        secrets = resolve(dep.config.secrets, dep.base_dir, region=dep.aws.region if dep.aws else None)
        return env_vars(dep, secrets, self.settings.otlp_endpoint)

    def drives_rollout(self, dep: Deployment) -> bool:
        return False  # photon's own rollout loop (runner.drive) shifts the router's weights

    def _owner(self, ctx: Ctx) -> str:
        return procs.owner_tag(ctx.dir.root, ctx.dir.service, ctx.dir.env)

    def _router(self, ctx: Ctx) -> Router:
        return Router(ctx.dir.path / "router", self.settings.haproxy)

    def _servers(self, ctx: Ctx) -> dict[str, tuple[str, int]]:
        out = {}
        weights = ctx.state.router.get("weights", {})
        for rel in ctx.state.releases.values():
            if rel.slot and rel.status in ("live", "starting", "held"):
                out[rel.slot] = (rel.address, int(weights.get(rel.slot, 0)))
        return out

    def _health_path(self, ctx: Ctx) -> str:
        if ctx.dep is not None:
            return ctx.dep.container.health.path
        return str(ctx.state.router.get("health_path", "/health"))

    def _start_router(self, ctx: Ctx, old_pid: int | None = None) -> None:
        st = ctx.state
        r = self._router(ctx)
        st.router["health_path"] = self._health_path(ctx)
        r.write(st.port or 0, st.router["health_path"], self._servers(ctx))
        r.check_config()
        pid = procs.spawn(r.argv(old_pid), env={k: os.environ[k] for k in INHERITED if k in os.environ},
                          owner=self._owner(ctx), role="router", cwd=r.dir, output=r.dir / "haproxy.log",
                          pidfile=r.dir / "pid")
        st.router["pid"] = pid
        procs.reap()
        r.wait_ready(lambda: procs.alive(pid))
        ctx.dir.save(st)

    def _write_config(self, ctx: Ctx) -> None:
        self._router(ctx).write(ctx.state.port or 0, self._health_path(ctx), self._servers(ctx))

    def reconcile(self, ctx: Ctx) -> list[str]:
        st, did = ctx.state, []
        owner = self._owner(ctx)
        running = procs.tagged(owner)
        keep = {rel.pid for rel in st.releases.values() if rel.status in ("live", "starting", "held") and rel.pid}
        router_pid = st.router.get("pid")
        orphans = [p for p, role in running.items()
                   if (role == "router" and p != router_pid) or (role.startswith("release:") and
                                                                 procs.group(p) not in keep)]
        if orphans:
            procs.stop(orphans, self.settings.stop_timeout)
            did.append(f"stopped {len(orphans)} orphan process(es): {sorted(orphans)}")
        for rel in st.releases.values():
            if rel.status in ("live", "starting", "held") and not procs.alive(rel.pid):
                rel.extra["down"] = True
                did.append(f"release {rel.id} is not running")
        if st.endpoint and not (router_pid in running and running[router_pid] == "router"):
            self._start_router(ctx)
            did.append("restarted the router")
        return did

    def ensure_endpoint(self, ctx: Ctx) -> str:
        st = ctx.state
        wanted = ctx.dep.local.port if ctx.dep else None
        pid = st.router.get("pid")
        up = pid and procs.alive(pid)
        changed = (wanted and wanted != st.port) or st.router.get("health_path") != self._health_path(ctx)
        if wanted:
            st.port = wanted
        st.port = st.port or free_port()
        st.endpoint = f"http://127.0.0.1:{st.port}"
        if not up:
            self._start_router(ctx)
        elif changed:
            self._start_router(ctx, old_pid=pid)  # a seamless reload: the old one finishes its requests
        return st.endpoint

    def start(self, ctx: Ctx, release: Release, environment: dict[str, str]) -> None:
        dep = ctx.dep
        assert dep is not None
        used = {r.slot for r in ctx.state.releases.values() if r.status in ("live", "held") and r.slot}
        release.slot = next(s for s in SLOTS if s not in used)
        port = free_port()
        release.address = f"127.0.0.1:{port}"
        runtime = dep.local.runtime
        if runtime == "auto":
            runtime = "docker" if dep.image and docker.daemon_answers(self.settings.docker) else "process"
        if runtime == "process" and not dep.local.command:
            raise ConfigError(f"{dep.service}: no Docker daemon answers and local.command is not set",
                              hint="start Docker, or set local.command to run the app as a process")
        env = {k: os.environ[k] for k in INHERITED if k in os.environ}
        env.update(environment)
        env["PORT"] = str(port)
        secret_names = sorted(set(environment) & set(dep.config.secrets))
        env["PHOTON_SECRET_NAMES"] = ",".join(secret_names)
        if runtime == "docker":
            argv = docker.run_argv(binary=self.settings.docker, service=dep.service, env=dep.env,
                                   release_id=release.id, image=dep.image or "", host_port=port,
                                   container_port=dep.container.port, env_names=sorted(environment))
        else:
            argv = [a.replace("${PORT}", str(port)) for a in dep.local.command or []]
        release.extra["runtime"] = runtime
        rdir = ctx.dir.release_dir(release.id)
        rdir.mkdir(parents=True, exist_ok=True)
        cwd = (dep.base_dir / dep.local.cwd) if dep.local.cwd else dep.base_dir
        release.pid = procs.spawn([sys.executable, "-m", "shipyard.photon.targets.local.supervise",
                                   str(rdir / "log.jsonl"), "--", *argv],
                                  env=env, owner=self._owner(ctx), role=f"release:{release.id}", cwd=cwd,
                                  output=rdir / "supervisor.out", pidfile=rdir / "pid")
        ctx.dir.save(ctx.state)
        r = self._router(ctx)
        ctx.state.router.setdefault("weights", {})[release.slot] = 0
        r.point(release.slot, release.address)
        r.weight(release.slot, 0)
        r.state(release.slot, "ready")
        self._write_config(ctx)

    def health(self, ctx: Ctx, release: Release) -> Health:
        if not procs.alive(release.pid):
            return Health(False, last_exit(ctx.dir.release_dir(release.id) / "log.jsonl"), fatal=True)
        h = ctx.dep.container.health if ctx.dep else None
        status = http_get(release.address, self._health_path(ctx), h.timeout if h else 2.0)
        if 200 <= status < 400:
            # The router checks on its own; until it sees the release UP it would not send it
            # requests, so a shift before then could leave no server to answer.
            if not self._router(ctx).is_up(release.slot):
                return Health(False, "the router's check has not passed yet")
            return Health(True)
        return Health(False, f"GET {self._health_path(ctx)} answered {status}" if status else "no answer")

    def smoke(self, ctx: Ctx, release: Release, path: str) -> int:
        return http_get(release.address, path, 10.0)

    def set_weights(self, ctx: Ctx, weights: dict[str, int]) -> None:
        r = self._router(ctx)
        # Raise the gaining side first: the total never drops to zero mid-shift.
        order = sorted(weights.items(), key=lambda kv: -kv[1])
        for rid, pct in order:
            slot = ctx.state.releases[rid].slot
            r.weight(slot, pct)
            ctx.state.router.setdefault("weights", {})[slot] = pct
        self._write_config(ctx)

    def counters(self, ctx: Ctx, release: Release) -> tuple[int, int]:
        return self._router(ctx).counters(release.slot)

    def alarms(self, ctx: Ctx) -> list[str]:
        return []  # no alarms locally; the error-rate and health gates apply

    def retire(self, ctx: Ctx, release: Release) -> None:
        r = self._router(ctx)
        if release.slot and procs.alive(ctx.state.router.get("pid")):
            r.weight(release.slot, 0)
            r.state(release.slot, "drain")
            deadline = time.monotonic() + self.settings.stop_timeout
            while r.sessions(release.slot) and time.monotonic() < deadline:
                time.sleep(0.05)
            r.state(release.slot, "maint")
        procs.stop_role(self._owner(ctx), f"release:{release.id}", self.settings.stop_timeout)
        if release.extra.get("runtime") == "docker" and docker.daemon_answers(self.settings.docker):
            _docker_rm(self.settings.docker, ctx, release.id)
        ctx.state.router.get("weights", {}).pop(release.slot, None)
        release.status = "stopped" if release.status != "failed" else "failed"
        self._write_config(ctx)

    def log_records(self, ctx: Ctx, release: Release, *, follow: bool,
                    sleep: Callable[[float], None]) -> Iterator[dict[str, Any]]:
        """The supervisor's JSON lines for the release; with `follow`, new ones as they come."""
        path = ctx.dir.release_dir(release.id) / "log.jsonl"
        if not path.is_file():
            raise NotFoundError(f"release {release.id} has no log (yet)", hint="it may not have started")
        with open(path, encoding="utf-8") as f:
            while True:
                line = f.readline()
                if not line:
                    if not follow:
                        return
                    sleep(0.25)
                    continue
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash mid-write

    def terminate(self, ctx: Ctx) -> list[str]:
        running = procs.tagged(self._owner(ctx))
        procs.stop(list(running), self.settings.stop_timeout)
        for rel in ctx.state.releases.values():
            if rel.extra.get("runtime") == "docker" and docker.daemon_answers(self.settings.docker):
                _docker_rm(self.settings.docker, ctx, rel.id)
        sock = self._router(ctx).sock
        sock.unlink(missing_ok=True)
        return [f"stopped {len(running)} process(es)"] if running else []


def _docker_rm(binary: str, ctx: Ctx, release_id: str) -> None:
    subprocess.run(docker.rm_argv(binary, ctx.dir.service, ctx.dir.env, release_id), capture_output=True, timeout=30)
