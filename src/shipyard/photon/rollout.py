"""The rollout state machine, shared by every target: pure decisions over plain data.

    start green -> health gate -> [smoke] -> shift to step 1 -> bake -> ... -> 100% -> bake -> promote
                         \\___________ any gate fails ____________________________/-> roll back

`steps()` turns a strategy into traffic steps; `decide()` takes the current state and one
observation (health, error rate, alarms, an operator's promote/rollback, the time) and returns
the next state and one action for the driver to carry out. Nothing here does I/O or reads a
clock: the drivers (runner.drive for every target) pass `now` in, so tests walk a whole
rollout, second by second, without sleeping.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Phase = Literal["health", "smoke", "bake", "done", "rolled_back", "failed"]
TERMINAL = ("done", "rolled_back", "failed")


@dataclass(frozen=True)
class Step:
    percent: int  # share of requests sent to the new release
    bake: float  # seconds the gates are watched at this share before the next step


@dataclass(frozen=True)
class GateRules:
    health: bool = True
    max_error_rate: float | None = 0.05
    window: float = 30.0
    min_requests: int = 20
    smoke: bool = False
    start_timeout: float = 60.0
    rollback: bool = True


def steps(strategy: dict[str, Any], bake: float) -> list[Step]:
    """The traffic steps of a strategy (`deploy.strategy` as a dict) ending at 100%.

    all_at_once: 100% at once, no bake, the old release stops right away.
    blue_green:  100% at once; the old release stays warm through `bake` (instant rollback).
    canary:      percent% for its bake, then 100% for `bake`.
    linear:      step_percent, 2x, ... each for step_bake, then 100% for `bake`.
    """
    kind = strategy["type"]
    if kind == "all_at_once":
        return [Step(100, 0.0)]
    if kind == "blue_green":
        return [Step(100, bake)]
    if kind == "canary":
        return [Step(int(strategy["percent"]), float(strategy["bake"])), Step(100, bake)]
    if kind == "linear":
        inc = int(strategy["step_percent"])
        out = [Step(p, float(strategy["step_bake"])) for p in range(inc, 100, inc)]
        return out + [Step(100, bake)]
    raise ValueError(f"unknown strategy {kind!r}")


@dataclass(frozen=True)
class Observation:
    now: float
    healthy: bool | None = None  # None: not known (yet)
    smoke_status: int | None = None
    error_rate: float | None = None  # None: too few requests in the window to judge
    requests: int = 0  # in the window
    alarms: tuple[str, ...] = ()
    operator: str | None = None  # "promote" | "rollback" from `photon promote/rollback`
    detail: str = ""  # why unhealthy, for the reason text
    fatal: bool = False  # the release is gone (process exited): no point waiting


@dataclass(frozen=True)
class Rollout:
    steps: tuple[Step, ...]
    started: float
    phase: Phase = "health"
    step: int = -1  # index into steps; -1 before any traffic
    since: float = 0.0  # when this phase/step began
    reason: str | None = None
    smoke_expect: int = 200

    @property
    def percent(self) -> int:
        return self.steps[self.step].percent if self.step >= 0 else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Rollout":
        return cls(**{**d, "steps": tuple(Step(**s) for s in d["steps"])})


def start(strategy_steps: list[Step], now: float, smoke_expect: int = 200) -> Rollout:
    return Rollout(steps=tuple(strategy_steps), started=now, since=now, smoke_expect=smoke_expect)


@dataclass(frozen=True)
class Action:
    kind: Literal["wait", "smoke", "shift", "promote", "rollback", "hold"]
    percent: int = 0
    reason: str = ""


def _failed(r: Rollout, rules: GateRules, now: float, reason: str) -> tuple[Rollout, Action]:
    if rules.rollback:
        return replace(r, phase="rolled_back", reason=reason, since=now), Action("rollback", 0, reason)
    return replace(r, phase="failed", reason=reason, since=now), Action("hold", r.percent, reason)


def _gate_failure(r: Rollout, o: Observation, rules: GateRules) -> str | None:
    if o.operator == "rollback":
        return "rolled back by an operator"
    if rules.health and o.healthy is False:
        return f"health check failing{': ' + o.detail if o.detail else ''}"
    if o.alarms:
        return f"alarm in ALARM: {', '.join(o.alarms)}"
    if rules.max_error_rate is not None and o.error_rate is not None and o.error_rate > rules.max_error_rate:
        return (f"error rate {o.error_rate:.1%} over the last {rules.window:g}s "
                f"(n={o.requests}) is above max_error_rate {rules.max_error_rate:.1%}")
    return None


def decide(r: Rollout, o: Observation, rules: GateRules) -> tuple[Rollout, Action]:
    """The next state and the one action to carry out, given an observation at `o.now`."""
    now = o.now
    if r.phase in TERMINAL:
        return r, Action("wait")
    if r.phase == "health":
        if o.operator == "rollback":
            return _failed(r, rules, now, "rolled back by an operator")
        if o.healthy or not rules.health:
            if rules.smoke:
                return replace(r, phase="smoke", since=now), Action("smoke")
            return replace(r, phase="bake", step=0, since=now), Action("shift", r.steps[0].percent)
        if o.fatal or now - r.since >= rules.start_timeout:
            detail = f": {o.detail}" if o.detail else ""
            if o.fatal:
                return _failed(r, rules, now, f"the release stopped before it was healthy{detail}")
            return _failed(r, rules, now, f"not healthy after {rules.start_timeout:g}s{detail}")
        return r, Action("wait")
    if r.phase == "smoke":
        if o.smoke_status is None:
            return r, Action("smoke")
        if o.smoke_status != r.smoke_expect:
            return _failed(r, rules, now, f"smoke request answered {o.smoke_status}, expected {r.smoke_expect}")
        return replace(r, phase="bake", step=0, since=now), Action("shift", r.steps[0].percent)
    # phase == "bake"
    failure = _gate_failure(r, o, rules)
    if failure:
        return _failed(r, rules, now, failure)
    last = len(r.steps) - 1
    if o.operator == "promote" and r.step < last:
        return replace(r, step=last, since=now, phase="done"), Action("promote", 100)
    if o.operator == "promote" or now - r.since >= r.steps[r.step].bake:
        if r.step == last:
            return replace(r, phase="done", since=now), Action("promote", 100)
        nxt = r.step + 1
        return replace(r, step=nxt, since=now), Action("shift", r.steps[nxt].percent)
    return r, Action("wait")


def time_left(r: Rollout, now: float) -> float:
    """Seconds of baking left (not counting the health wait)."""
    if r.phase in TERMINAL:
        return 0.0
    if r.step < 0:
        return sum(s.bake for s in r.steps)
    here = max(0.0, r.steps[r.step].bake - (now - r.since))
    return here + sum(s.bake for s in r.steps[r.step + 1:])


@dataclass
class Window:
    """Cumulative (requests, errors) samples of the new release; the error rate over a window."""

    samples: list[tuple[float, int, int]] = field(default_factory=list)

    def add(self, now: float, requests: int, errors: int) -> None:
        self.samples.append((now, requests, errors))

    def rate(self, now: float, window: float, min_requests: int) -> tuple[float | None, int]:
        """(error rate or None when fewer than min_requests, requests) over [now-window, now]."""
        if not self.samples:
            return None, 0
        base = self.samples[0]
        for s in self.samples:
            if s[0] <= now - window:
                base = s
        # Older samples than the baseline are never needed again.
        self.samples = [s for s in self.samples if s[0] >= base[0]]
        t, req, err = self.samples[-1]
        n, e = req - base[1], err - base[2]
        if n < min_requests:
            return None, n
        return e / n, n
