"""The rollout state machine, walked second by second with plain data (no I/O, no sleeping)."""

from __future__ import annotations

import pytest

from shipyard.photon import rollout as ro
from shipyard.photon.rollout import GateRules, Observation, Step


@pytest.mark.parametrize("strategy, bake, expected", [
    ({"type": "all_at_once"}, 60, [Step(100, 0)]),
    ({"type": "blue_green"}, 60, [Step(100, 60)]),
    ({"type": "canary", "percent": 10, "bake": 30}, 60, [Step(10, 30), Step(100, 60)]),
    ({"type": "linear", "step_percent": 25, "step_bake": 10}, 5,
     [Step(25, 10), Step(50, 10), Step(75, 10), Step(100, 5)]),
    ({"type": "linear", "step_percent": 40, "step_bake": 10}, 0, [Step(40, 10), Step(80, 10), Step(100, 0)]),
])
def test_steps_of_each_strategy(strategy, bake, expected):
    assert ro.steps(strategy, bake) == expected


def walk(strategy, rules=GateRules(), observe=lambda t, r: Observation(now=t, healthy=True), until=300):
    """Run decide() once per second; the actions taken, with the time."""
    r = ro.start(ro.steps(strategy, 20), 0.0)
    actions = []
    for t in range(until):
        r, a = ro.decide(r, observe(float(t), r), rules)
        if a.kind not in ("wait",):
            actions.append((t, a.kind, a.percent))
        if r.phase in ro.TERMINAL:
            return r, actions
    raise AssertionError(f"never finished: {r}")


def test_a_good_canary_goes_10_then_100_then_promotes_on_time():
    r, actions = walk({"type": "canary", "percent": 10, "bake": 30})
    assert actions == [(0, "shift", 10), (30, "shift", 100), (50, "promote", 100)]
    assert r.phase == "done"


def test_a_good_linear_rollout_steps_every_step_bake():
    _, actions = walk({"type": "linear", "step_percent": 50, "step_bake": 10})
    assert actions == [(0, "shift", 50), (10, "shift", 100), (30, "promote", 100)]


def test_error_rate_above_the_max_rolls_back_with_the_reason():
    def observe(t, r):
        return Observation(now=t, healthy=True, error_rate=0.3 if t >= 12 else 0.0, requests=100)

    r, actions = walk({"type": "canary", "percent": 10, "bake": 30}, observe=observe)
    assert actions[-1] == (12, "rollback", 0)
    assert r.phase == "rolled_back" and "error rate 30.0%" in r.reason and "max_error_rate 5.0%" in r.reason


def test_an_unknown_error_rate_does_not_fail_the_gate():
    _, actions = walk({"type": "blue_green"}, observe=lambda t, r: Observation(now=t, healthy=True, error_rate=None))
    assert actions[-1][1] == "promote"


def test_health_never_passing_rolls_back_after_start_timeout():
    r, actions = walk({"type": "blue_green"}, GateRules(start_timeout=15),
                      observe=lambda t, r: Observation(now=t, healthy=False, detail="GET /health answered 503"))
    assert actions == [(15, "rollback", 0)]
    assert r.reason == "not healthy after 15s: GET /health answered 503"


def test_a_release_that_exits_fails_at_once():
    r, actions = walk({"type": "blue_green"},
                      observe=lambda t, r: Observation(now=t, healthy=False, fatal=True, detail="exited with code 1"))
    assert actions == [(0, "rollback", 0)] and "exited with code 1" in r.reason


def test_health_failing_during_bake_and_alarms_roll_back():
    _, actions = walk({"type": "canary", "percent": 10, "bake": 30},
                      observe=lambda t, r: Observation(now=t, healthy=t < 40))
    assert actions[-1] == (40, "rollback", 0)
    r, actions = walk({"type": "canary", "percent": 10, "bake": 30},
                      observe=lambda t, r: Observation(now=t, healthy=True, alarms=("hello-5xx",) if t > 3 else ()))
    assert actions[-1] == (4, "rollback", 0) and "hello-5xx" in r.reason


def test_no_rollback_holds_the_failed_release_at_its_share():
    r, actions = walk({"type": "canary", "percent": 10, "bake": 30}, GateRules(rollback=False),
                      observe=lambda t, r: Observation(now=t, healthy=True, error_rate=0.5 if t > 5 else 0))
    assert actions[-1] == (6, "hold", 10) and r.phase == "failed"


def test_operator_promote_and_rollback():
    _, actions = walk({"type": "linear", "step_percent": 10, "step_bake": 60},
                      observe=lambda t, r: Observation(now=t, healthy=True, operator="promote" if t == 5 else None))
    assert actions[-1] == (5, "promote", 100)
    r, actions = walk({"type": "canary", "percent": 10, "bake": 30},
                      observe=lambda t, r: Observation(now=t, healthy=True, operator="rollback" if t == 5 else None))
    assert actions[-1] == (5, "rollback", 0) and r.reason == "rolled back by an operator"


def test_smoke_request_gates_the_first_shift():
    rules = GateRules(smoke=True)
    r, actions = walk({"type": "blue_green"}, rules,
                      observe=lambda t, r: Observation(now=t, healthy=True, smoke_status=404 if r.phase == "smoke" else None))
    assert actions == [(0, "smoke", 0), (1, "rollback", 0)] and "answered 404" in r.reason
    _, actions = walk({"type": "blue_green"}, rules,
                      observe=lambda t, r: Observation(now=t, healthy=True, smoke_status=200 if r.phase == "smoke" else None))
    assert actions[:2] == [(0, "smoke", 0), (1, "shift", 100)]


def test_time_left_counts_the_remaining_bakes():
    r = ro.start(ro.steps({"type": "canary", "percent": 10, "bake": 30}, 20), 0.0)
    assert ro.time_left(r, 0) == 50
    r, _ = ro.decide(r, Observation(now=0, healthy=True), GateRules())
    assert ro.time_left(r, 10) == 40


def test_error_rate_window_and_minimum():
    w = ro.Window()
    for t in range(0, 61, 5):  # 10 requests per 5 s; errors start at t=40
        w.add(t, 2 * t, max(0, t - 40))
    rate, n = w.rate(60, 20, 10)
    assert n == 40 and rate == pytest.approx(20 / 40)
    assert w.rate(60, 20, 100) == (None, 40)  # too few requests to judge
    assert ro.Rollout.from_dict(ro.start([Step(10, 1)], 0).to_dict()).steps == (Step(10, 1),)
