"""What an apply or terminate would change: pure functions over the file and the state.

`make_plan(dep, state)` compares the file's release spec with the live release's, field by
field, and lists the steps the rollout would take. Nothing here does I/O; `shipyard photon
plan` prints `Plan.render()`, and the runner executes the same Plan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from shipyard.photon.model import Deployment
from shipyard.photon.rollout import Step, steps
from shipyard.photon.state import EnvState


@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any

    def render(self) -> str:
        if self.old is None:
            return f"+ {self.field} = {self.new!r}"
        if self.new is None:
            return f"- {self.field} (was {self.old!r})"
        return f"~ {self.field}: {self.old!r} -> {self.new!r}"


@dataclass
class Plan:
    service: str
    env: str
    target: str
    action: str  # create | update | none | terminate
    changes: list[Change] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    rollout: list[Step] = field(default_factory=list)
    reason: str = ""

    @property
    def empty(self) -> bool:
        return self.action == "none"

    def render(self) -> str:
        head = f"{self.service}/{self.env} ({self.target}): {self.action}"
        if self.reason:
            head += f" ({self.reason})"
        lines = [head]
        lines += [f"  {c.render()}" for c in self.changes]
        lines += [f"  {i}. {s}" for i, s in enumerate(self.steps, 1)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values (a command is compared whole)."""
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten(v, key))  # an empty dict adds nothing: {} and absent are the same
        else:
            out[key] = v
    return out


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    a, b = flatten(old), flatten(new)
    return [Change(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _timeline(plan_steps: list[Step], old: str | None, keep_old: bool) -> list[str]:
    out = []
    for s in plan_steps:
        bake = f", watch the gates for {s.bake:g}s" if s.bake else ""
        out.append(f"send {s.percent}% of requests to the new release{bake}")
    if old:
        out.append(f"stop {old}" + (" (kept warm until then for an instant rollback)" if keep_old else ""))
    return out


def rollout_steps(dep: Deployment, has_live: bool) -> list[Step]:
    """The traffic steps; a first release has nothing to share traffic with: 100% at once."""
    strategy = dep.deploy.strategy.model_dump()
    all_steps = steps(strategy, dep.deploy.bake)
    if not has_live:
        return [Step(100, dep.deploy.bake if strategy["type"] != "all_at_once" else 0.0)]
    return all_steps


def make_plan(dep: Deployment, state: EnvState, *, force: bool = False,
              resource_changes: list[Change] | None = None) -> Plan:
    live = state.releases.get(state.live) if state.live else None
    spec = dep.spec()
    plan = Plan(dep.service, dep.env, dep.target, "update" if live else "create")
    plan.changes = diff(live.spec if live else {}, spec) + list(resource_changes or [])
    down = bool(live and live.extra.get("down"))
    if live and not plan.changes and not force and not down:
        plan.action, plan.reason = "none", f"{live.id} ({live.version}) already runs this file"
        return plan
    if live and not plan.changes:
        plan.reason = "the live release is not running" if down else "forced"
    held = state.rollout and state.rollout.get("release")
    plan.rollout = rollout_steps(dep, live is not None and not down)
    plan.steps = []
    if held:
        plan.steps.append(f"roll back the unfinished release {held}")
    if not state.endpoint:
        plan.steps.append(f"create the endpoint ({dep.target})")
    plan.steps.append(f"start release r{state.seq + 1} ({dep.release_version}) with no traffic")
    gates = dep.deploy.gates
    plan.steps.append(f"wait until {dep.container.health.path} answers (at most {dep.container.health.start_timeout:g}s)"
                      if gates.health else "no health gate (gates.health is false)")
    if gates.smoke:
        plan.steps.append(f"smoke: GET {gates.smoke.path} must answer {gates.smoke.expect_status}")
    keep_old = dep.deploy.strategy.type != "all_at_once"
    plan.steps += _timeline(plan.rollout, live.id if live else None, keep_old)
    return plan


def terminate_plan(service: str, env: str, state: EnvState, target: str) -> Plan:
    plan = Plan(service, env, target, "terminate" if state.endpoint or state.releases else "none")
    if plan.empty:
        plan.reason = "nothing is deployed"
        return plan
    running = [r.id for r in state.releases.values() if r.status in ("live", "starting", "held")]
    plan.steps = [f"stop {', '.join(running) or 'no release'}", "remove the endpoint",
                  *([f"delete {len(state.resources)} AWS resource group(s)"] if state.resources else []),
                  f"delete the state of {service}/{env}"]
    return plan
