"""Plans are pure: the file against the state, field by field, with the rollout's steps."""

from __future__ import annotations

import json

from shipyard.photon.model import validate
from shipyard.photon.plan import diff, make_plan, terminate_plan
from shipyard.photon.state import EnvState, Release

DOC = {"service": "hello", "env": "dev", "version": "v2", "local": {"command": ["app", "${PORT}"]},
       "config": {"vars": {"GREETING": "hi"}, "secrets": {"API_KEY": "env:HELLO_API_KEY"}},
       "deploy": {"strategy": {"type": "canary", "percent": 10, "bake": "30s"}, "bake": "1m"}}


def _state_with_live(spec):
    st = EnvState("hello", "dev", endpoint="http://127.0.0.1:1", seq=1, live="r1")
    st.releases["r1"] = Release(id="r1", version="v1", spec=spec, status="live")
    return st


def test_first_apply_creates_the_endpoint_and_goes_to_100_at_once():
    plan = make_plan(validate(DOC), EnvState("hello", "dev"))
    assert plan.action == "create"
    assert [s.percent for s in plan.rollout] == [100]
    text = plan.render()
    assert "create the endpoint (local)" in text and "start release r1 (v2)" in text
    assert "+ config.secrets.API_KEY = 'env:HELLO_API_KEY'" in text


def test_the_same_file_again_is_no_change():
    dep = validate(DOC)
    plan = make_plan(dep, _state_with_live(dep.spec()))
    assert plan.empty and "r1 (v1) already runs this file" in plan.reason
    assert make_plan(dep, _state_with_live(dep.spec()), force=True).action == "update"


def test_an_update_lists_changed_fields_and_the_canary_timeline():
    old = validate({**DOC, "version": "v1", "config": {"vars": {"GREETING": "hello"}}}).spec()
    plan = make_plan(validate(DOC), _state_with_live(old))
    assert [c.field for c in plan.changes] == ["config.secrets.API_KEY", "config.vars.GREETING", "version"]
    assert "~ config.vars.GREETING: 'hello' -> 'hi'" in plan.render()
    assert plan.steps[-3:] == ["send 10% of requests to the new release, watch the gates for 30s",
                               "send 100% of requests to the new release, watch the gates for 60s",
                               "stop r1 (kept warm until then for an instant rollback)"]
    json.dumps(plan.to_dict())


def test_a_live_release_that_died_is_replaced():
    dep = validate(DOC)
    st = _state_with_live(dep.spec())
    st.releases["r1"].extra["down"] = True
    plan = make_plan(dep, st)
    assert plan.action == "update" and plan.reason == "the live release is not running"
    assert [s.percent for s in plan.rollout] == [100]


def test_terminate_plan():
    st = _state_with_live({})
    assert terminate_plan("hello", "dev", st, "local").steps[0] == "stop r1"
    assert terminate_plan("hello", "dev", EnvState("hello", "dev"), "local").empty


def test_diff_is_field_by_field():
    assert [c.render() for c in diff({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "d": 3}})] == [
        "- a.c (was 2)", "+ a.d = 3"]
