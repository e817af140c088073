"""photon's library API: apply, terminate, status, promote, rollback, logs, ls.

Every command works under the env's lock and first reconciles: the target stops orphans and
restarts what died, and a rollout left half-way by a killed photon is rolled back. `drive()` is
the one rollout loop for every target: it observes (health, counters, alarms, an operator's
request), asks rollout.decide() what to do, and does it through the Target protocol.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from shipyard.errors import InputError, NotFoundError
from shipyard.notify import Notice, Notifier, get_notifier
from shipyard.photon import rollout as ro
from shipyard.photon.model import Deployment
from shipyard.photon.plan import Plan, make_plan, terminate_plan
from shipyard.photon.state import EnvDir, EnvState, Release, all_envs, check_name
from shipyard.photon.targets import get_target
from shipyard.photon.targets.base import Ctx, weights_for
from shipyard.settings import Settings, get_settings

Progress = Callable[[dict[str, Any]], None]


@dataclass
class Outcome:
    status: str  # deployed | unchanged | rolled_back | held | terminated | nothing
    service: str
    env: str
    endpoint: str | None = None
    release: str | None = None
    version: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("deployed", "unchanged", "terminated", "nothing")


class Photon:
    def __init__(self, settings: Settings | None = None, *, notifier: Notifier | None = None,
                 progress: Progress | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings or get_settings()
        self.ps = self.settings.photon
        self.notifier = notifier or get_notifier(self.settings)
        self.progress = progress or (lambda _e: None)
        self.clock, self.sleep = clock, sleep
        self.root = Path(self.ps.state_dir).resolve()

    # ---- plumbing -------------------------------------------------------------------------
    def env_dir(self, service: str, env: str) -> EnvDir:
        return EnvDir(self.root, check_name("service", service), check_name("env", env))

    def _notify(self, level: str, title: str, message: str, **fields: Any) -> None:
        self.notifier.send(Notice(tool="photon", level=level, title=title, message=message,  # type: ignore[arg-type]
                                  channel=self.ps.channel, fields=fields))

    @contextmanager
    def _session(self, service: str, env: str, dep: Deployment | None = None,
                 target_name: str | None = None) -> Iterator[tuple[Ctx, Any]]:
        d = self.env_dir(service, env)
        with d.locked() as _:
            state = d.load()
            if dep is not None and d.exists() and state.target != dep.target:
                raise InputError(f"{service}/{env} runs on target {state.target!r}, the file says {dep.target!r}",
                                 hint="terminate it first, or keep the target")
            state.target = dep.target if dep is not None else (target_name or state.target)
            ctx = Ctx(d, state, dep)
            target = get_target(state.target, self.ps)
            if d.exists():
                target.reconcile(ctx)
                if state.rollout and state.rollout["state"]["phase"] != "failed":
                    self._undo(target, ctx, "interrupted: photon stopped during the rollout")
                d.save(state)
            yield ctx, target

    def _undo(self, target: Any, ctx: Ctx, reason: str) -> None:
        """Roll back the rollout recorded in the state: previous release back to 100%, new stopped."""
        st = ctx.state
        info = st.rollout or {}
        new = st.releases.get(info.get("release", ""))
        prev = st.releases.get(info.get("previous") or "")
        if prev is not None and not prev.extra.get("down"):
            target.set_weights(ctx, {prev.id: 100, **({new.id: 0} if new else {})})
        if new is not None:
            target.retire(ctx, new)
            new.status = "failed"
        st.rollout = None
        self._rolled_back(ctx, new, prev, reason)

    # ---- commands -------------------------------------------------------------------------
    def plan(self, dep: Deployment) -> Plan:
        d = self.env_dir(dep.service, dep.env)
        return make_plan(dep, d.load())

    def apply(self, dep: Deployment, *, rollback: bool = True, force: bool = False) -> Outcome:
        # Checked first (secrets resolved locally): a bad reference fails before anything starts.
        environment = get_target(dep.target, self.ps).prepare(dep)
        with self._session(dep.service, dep.env, dep) as (ctx, target):
            st = ctx.state
            if st.rollout:  # held by --no-rollback earlier; a new apply replaces it
                self._undo(target, ctx, "replaced by a new apply")
            plan = make_plan(dep, st, force=force)
            if plan.empty:
                live = st.releases[st.live] if st.live else None
                return Outcome("unchanged", dep.service, dep.env, st.endpoint, st.live,
                               live.version if live else None, plan.reason)
            endpoint = target.ensure_endpoint(ctx)
            ctx.dir.save(st)
            old = st.releases.get(st.live) if st.live else None
            new = Release(id=st.next_release_id(), version=dep.release_version, spec=dep.spec(),
                          extra={"base_dir": str(dep.base_dir)})
            st.releases[new.id] = new
            st.rollout = {"release": new.id, "previous": old.id if old else None,
                          "state": ro.start(plan.rollout, self.clock()).to_dict()}
            ctx.dir.save(st)
            self.progress({"kind": "start", "release": new.id, "version": new.version, "endpoint": endpoint})
            if target.drives_rollout(dep):
                return self._hand_over(target, ctx, new, old)
            target.start(ctx, new, environment)
            ctx.dir.save(st)
            g = dep.deploy.gates
            rules = ro.GateRules(health=g.health, max_error_rate=g.max_error_rate, window=g.window,
                                 min_requests=g.min_requests, smoke=g.smoke is not None,
                                 start_timeout=dep.container.health.start_timeout,
                                 rollback=rollback and dep.deploy.rollback)
            live_old = old if old is not None and not old.extra.get("down") else None
            return self.drive(target, ctx, new, live_old, old, rules, dep)

    def drive(self, target: Any, ctx: Ctx, new: Release, old: Release | None, replaced: Release | None,
              rules: ro.GateRules, dep: Deployment) -> Outcome:
        st = ctx.state
        r = ro.Rollout.from_dict(st.rollout["state"])  # type: ignore[index]
        if dep.deploy.gates.smoke:
            r = ro.Rollout(**{**r.__dict__, "smoke_expect": dep.deploy.gates.smoke.expect_status})
        window, fails, smoke = ro.Window(), 0, None
        # The baseline before any traffic: counters are cumulative (a router slot's outlive its
        # releases; CloudWatch sums from the release's start), the gate judges what came after.
        window.add(self.clock(), *target.counters(ctx, new))
        try:
            while True:
                now = self.clock()
                healthy, detail, fatal = target.health(ctx, new)
                fails = 0 if healthy else fails + 1
                rate, n, alarms = None, 0, ()
                if r.phase == "bake":
                    window.add(now, *target.counters(ctx, new))
                    rate, n = window.rate(now, rules.window, rules.min_requests)
                    alarms = tuple(target.alarms(ctx))
                if r.phase == "smoke" and dep.deploy.gates.smoke:
                    smoke = target.smoke(ctx, new, dep.deploy.gates.smoke.path)
                obs = ro.Observation(now=now, healthy=healthy if r.phase == "health" else (fails < 2),
                                     smoke_status=smoke, error_rate=rate, requests=n, alarms=alarms,
                                     operator=ctx.dir.take_request(), detail=detail,
                                     fatal=fatal)
                r, action = ro.decide(r, obs, rules)
                st.rollout["state"] = r.to_dict()  # type: ignore[index]
                if action.kind == "shift":
                    target.set_weights(ctx, weights_for(old.id if old else None, new.id, action.percent))
                    ctx.dir.save(st)
                    self.progress({"kind": "step", "percent": action.percent, "step": r.step + 1,
                                   "steps": len(r.steps), "bake": r.steps[r.step].bake})
                elif action.kind == "promote":
                    return self._promote(target, ctx, new, replaced)
                elif action.kind == "rollback":
                    self._undo(target, ctx, action.reason)
                    return Outcome("rolled_back", ctx.dir.service, ctx.dir.env, st.endpoint, new.id, new.version,
                                   action.reason)
                elif action.kind == "hold":
                    new.status = "held"
                    st.record("held", release=new.id, reason=action.reason)
                    ctx.dir.save(st)
                    self._notify("warning", f"{ctx.dir.service}/{ctx.dir.env} failed (kept for debugging)",
                                 f"{new.version}: {action.reason}. Run `photon rollback` or `photon promote`.",
                                 endpoint=st.endpoint, release=new.id, reason=action.reason)
                    return Outcome("held", ctx.dir.service, ctx.dir.env, st.endpoint, new.id, new.version,
                                   action.reason)
                if action.kind == "wait":
                    self.progress({"kind": "tick", "phase": r.phase, "percent": r.percent, "error_rate": rate,
                                   "requests": n, "time_left": ro.time_left(r, now)})
                    self.sleep(self.ps.tick)
        except BaseException as exc:  # Ctrl-C, SIGTERM, an AWS error: never leave a half rollout
            if st.rollout:
                self._undo(target, ctx, f"interrupted: {type(exc).__name__}")
            raise

    def _hand_over(self, target: Any, ctx: Ctx, new: Release, old: Release | None) -> Outcome:
        """The backend runs the rollout (ECS native): record its verdict."""
        st = ctx.state
        ok, reason = target.run_rollout(ctx, new, tick=self.ps.tick, sleep=self.sleep,
                                        take_request=ctx.dir.take_request, progress=self.progress)
        st.rollout = None
        if ok:
            new.status, st.live = "live", new.id
            if old is not None and old.id != new.id:
                old.status = "stopped"
            return self._deployed(ctx, new)
        new.status = "failed"
        self._rolled_back(ctx, new, old, reason)
        return Outcome("rolled_back", ctx.dir.service, ctx.dir.env, st.endpoint, new.id, new.version, reason)

    def _deployed(self, ctx: Ctx, new: Release) -> Outcome:
        st = ctx.state
        self._prune(st, ctx.dir)
        st.record("deployed", release=new.id, version=new.version)
        ctx.dir.save(st)
        self._notify("success", f"{ctx.dir.service}/{ctx.dir.env} deployed",
                     f"{new.version} ({new.id}) is live at {st.endpoint}", endpoint=st.endpoint, release=new.id)
        return Outcome("deployed", ctx.dir.service, ctx.dir.env, st.endpoint, new.id, new.version)

    def _rolled_back(self, ctx: Ctx, new: Release | None, prev: Release | None, reason: str) -> None:
        st = ctx.state
        st.record("rolled_back", release=new.id if new else None, reason=reason)
        ctx.dir.save(st)
        keeps = f"{prev.id} ({prev.version}) keeps serving" if prev else "nothing is live"
        self._notify("failure", f"{ctx.dir.service}/{ctx.dir.env} rolled back",
                     f"{new.version if new else 'release'} was rolled back: {reason}. {keeps}.",
                     endpoint=st.endpoint, release=new.id if new else None, reason=reason)

    def _promote(self, target: Any, ctx: Ctx, new: Release, replaced: Release | None) -> Outcome:
        st = ctx.state
        target.set_weights(ctx, {new.id: 100, **({replaced.id: 0} if replaced and replaced.status == "live" else {})})
        new.status = "live"
        new.extra.pop("down", None)
        st.live, st.rollout = new.id, None
        ctx.dir.save(st)
        if replaced is not None and replaced.id != new.id:
            target.retire(ctx, replaced)
            replaced.status = "stopped"
        return self._deployed(ctx, new)

    def _prune(self, st: EnvState, d: EnvDir) -> None:
        old = [r for r in st.releases.values() if r.status in ("stopped", "failed")]
        for rel in old[:-self.ps.releases_kept] if self.ps.releases_kept else old:
            st.releases.pop(rel.id)
            for f in sorted(d.release_dir(rel.id).glob("*")):
                f.unlink(missing_ok=True)
            d.release_dir(rel.id).rmdir() if d.release_dir(rel.id).is_dir() else None

    def terminate(self, service: str, env: str) -> Outcome:
        d = self.env_dir(service, env)
        if not d.exists():
            return Outcome("nothing", service, env, reason="nothing is deployed")
        with self._session(service, env) as (ctx, target):
            did = target.terminate(ctx)
            d.remove()
        self._notify("info", f"{service}/{env} terminated", "; ".join(did) or "removed", endpoint=ctx.state.endpoint)
        return Outcome("terminated", service, env, ctx.state.endpoint, reason="; ".join(did))

    def terminate_plan(self, service: str, env: str) -> Plan:
        st = self.env_dir(service, env).load()
        return terminate_plan(service, env, st, st.target)

    def operate(self, service: str, env: str, action: str) -> Outcome:
        """promote / rollback: ask the running apply, or act on a held release, or roll back to
        the previous release."""
        d = self.env_dir(service, env)
        if not d.exists():
            raise NotFoundError(f"{service}/{env} is not deployed")
        with d.locked(wait=False) as free:
            if not free:
                d.ask(action)
                return Outcome("asked", service, env, reason=f"{action} asked of the running apply")
        with self._session(service, env) as (ctx, target):
            st = ctx.state
            if st.rollout:
                new = st.releases[st.rollout["release"]]
                prev = st.releases.get(st.rollout.get("previous") or "")
                if action == "promote":
                    return self._promote(target, ctx, new, prev)
                self._undo(target, ctx, "rolled back by an operator")
                return Outcome("rolled_back", service, env, st.endpoint, new.id, new.version, "operator")
        if action == "promote":
            return Outcome("nothing", service, env, reason="no rollout to promote")
        return self._redeploy_previous(service, env)

    def _redeploy_previous(self, service: str, env: str) -> Outcome:
        st = self.env_dir(service, env).load()
        prev = [r for r in st.releases.values() if r.status == "stopped" and r.id != st.live]
        if not prev:
            raise NotFoundError(f"{service}/{env}: no previous release to roll back to")
        rel = prev[-1]
        dep = Deployment.model_validate({"service": service, "env": env, "target": st.target, **rel.spec,
                                         "deploy": {"strategy": {"type": "blue_green"}}})
        dep.located(Path(rel.extra.get("base_dir") or "."))
        return self.apply(dep, force=True)

    def status(self, service: str, env: str) -> dict[str, Any]:
        d = self.env_dir(service, env)
        if not d.exists():
            raise NotFoundError(f"{service}/{env} is not deployed", hint="`shipyard photon ls` lists what is")
        with d.locked(wait=False) as free:
            busy = not free
        if not busy:
            with self._session(service, env):
                pass
        st = d.load()
        roll = None
        if st.rollout:
            r = ro.Rollout.from_dict(st.rollout["state"])
            roll = {"release": st.rollout["release"], "phase": r.phase, "step": r.step + 1, "steps": len(r.steps),
                    "percent": r.percent, "reason": r.reason, "running": busy}
        live = st.releases.get(st.live) if st.live else None
        return {"service": service, "env": env, "target": st.target, "endpoint": st.endpoint,
                "live": ({"release": live.id, "version": live.version, "since": live.created,
                          "running": not live.extra.get("down")} if live else None),
                "rollout": roll,
                "releases": [{"release": r.id, "version": r.version, "status": r.status, "created": r.created}
                             for r in st.releases.values()],
                "resources": st.resources, "history": st.history}

    def ls(self) -> list[dict[str, Any]]:
        out = []
        for d in all_envs(self.root):
            st = d.load()
            live = st.releases.get(st.live) if st.live else None
            out.append({"service": d.service, "env": d.env, "target": st.target, "endpoint": st.endpoint,
                        "version": live.version if live else None,
                        "rollout": st.rollout["state"]["phase"] if st.rollout else None})
        return out

    def logs(self, service: str, env: str, release: str | None = None, *,
             follow: bool = False) -> Iterator[dict[str, Any]]:
        """A release's log records (time, release, stream, message); the live one by default."""
        d = self.env_dir(service, env)
        st = d.load()
        if not d.exists():
            raise NotFoundError(f"{service}/{env} is not deployed", hint="`shipyard photon ls` lists what is")
        rid = release or st.live or (max(st.releases, key=lambda k: int(k[1:])) if st.releases else None)
        if not rid or rid not in st.releases:
            raise NotFoundError(f"{service}/{env}: no release {release or ''} with logs".replace("  ", " "),
                                hint=f"releases: {', '.join(st.releases) or 'none'}")
        target = get_target(st.target, self.ps)
        yield from target.log_records(Ctx(d, st), st.releases[rid], follow=follow, sleep=self.sleep)
