"""What photon asks AWS for, checked as data (no AWS)."""

from __future__ import annotations

import json

import pytest

from shipyard.errors import InputError
from shipyard.photon.aws import spec
from shipyard.photon.model import validate

AWS = {"subnets": ["subnet-1"], "security_groups": ["sg-1"], "expose": {"host": "{service}-{env}.dev.example.com"},
       "listener": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/lb/1/2"}


def dep(**over):
    doc = {"service": "hello", "env": "feature-a-very-long-branch-name", "target": "aws", "image": "r/hello:1",
           "config": {"vars": {"A": "1"}, "secrets": {"K": "ssm:/hello/k"}}, "aws": AWS}
    doc.update(over)
    return validate(doc)


def test_weights_stay_within_0_999_and_sum_to_999():
    for pct in range(0, 101):
        new, old = spec.weights(pct)
        assert 0 <= new <= 999 and 0 <= old <= 999 and new + old == 999
    assert spec.weights(10) == (100, 899) and spec.weights(100) == (999, 0)


def test_names_fit_aws_limits():
    n = spec.names("a-service-name-of-forty-characters-long1", "an-env-name-of-forty-characters-long-xyz")
    assert all(len(t) <= 32 for t in n["target_group"].values())
    assert n["target_group"]["blue"] != n["target_group"]["green"]
    assert all(len(n[k]) <= 64 for k in ("exec_role", "task_role", "infra_role"))
    assert spec.host(dep()) == "hello-feature-a-very-long-branch-name.dev.example.com"


def test_task_definition_with_firelens_and_without_tracing():
    d = dep(logging={"firelens": {"options": {"Name": "datadog"}}}, tracing={"enabled": False})
    td = spec.task_definition(d, region="eu-west-1", exec_role="arn:e", task_role="arn:t",
                              secrets={"K": "arn:aws:ssm:eu-west-1:1:parameter/hello/k"})
    names = [c["name"] for c in td["containerDefinitions"]]
    assert names == ["app", "log_router"]
    app = td["containerDefinitions"][0]
    assert app["logConfiguration"] == {"logDriver": "awsfirelens", "options": {"Name": "datadog"}}
    assert app["secrets"] == [{"name": "K", "valueFrom": "arn:aws:ssm:eu-west-1:1:parameter/hello/k"}]
    assert not any(e["name"].startswith("OTEL_") for e in app["environment"])
    assert td["runtimePlatform"]["cpuArchitecture"] == "X86_64" and td["cpu"] == "256"


def test_only_parameter_store_and_secrets_manager_references_on_aws():
    with pytest.raises(InputError, match=r"config.secrets.K \(file:...\) cannot be used on AWS"):
        spec.secret_refs(dep(config={"secrets": {"K": "file:key.txt"}}))
    assert spec.value_from("secretsmanager", "arn:s", "password") == "arn:s:password::"
    assert spec.value_from("ssm", "arn:p", None) == "arn:p"


@pytest.mark.parametrize("strategy, expected", [
    ({"type": "blue_green"}, {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 2}),
    ({"type": "canary", "percent": 5, "bake": "10m"},
     {"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 5.0, "canaryBakeTimeInMinutes": 10}}),
    ({"type": "linear", "step_percent": 20, "step_bake": "30s"},
     {"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 20.0, "stepBakeTimeInMinutes": 1}}),
    ({"type": "all_at_once"}, {"strategy": "ROLLING", "minimumHealthyPercent": 100}),
])
def test_native_strategies(strategy, expected):
    hooks = [{"lambda_arn": "arn:aws:lambda:us-east-1:1:function:check", "role_arn": "arn:aws:iam::1:role/hooks",
              "stages": ["POST_TEST_TRAFFIC_SHIFT"]}]
    conf = spec.native_deployment_configuration(dep(deploy={"strategy": strategy, "bake": "90s", "driver": "native"},
                                                    aws={**AWS, "lifecycle_hooks": hooks}))
    assert expected.items() <= conf.items()
    assert conf["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    if strategy["type"] != "all_at_once":
        assert conf["lifecycleHooks"][0]["lifecycleStages"] == ["POST_TEST_TRAFFIC_SHIFT"]


def test_execution_policy_names_only_these_secrets_and_this_log_group():
    pol = spec.execution_policy("arn:aws:logs:us-east-1:1:log-group:/photon/hello/dev", ["arn:s"], ["arn:p"])
    by_action = {tuple(s["Action"]): s["Resource"] for s in pol["Statement"]}
    assert by_action[("secretsmanager:GetSecretValue",)] == ["arn:s"]
    assert by_action[("ssm:GetParameters",)] == ["arn:p"]
    assert by_action[("logs:CreateLogStream", "logs:PutLogEvents")] == "arn:aws:logs:us-east-1:1:log-group:/photon/hello/dev:*"
    json.dumps(pol)
