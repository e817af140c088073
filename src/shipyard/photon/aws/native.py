"""The native driver: ECS runs the rollout with its own deployment strategies.

One service per env whose load balancer entry carries `advancedConfiguration` (the env's two
target groups and its listener rule): ECS shifts the rule itself according to
`deploymentConfiguration` (BLUE_GREEN, CANARY, LINEAR with bake times, alarms, circuit breaker).
photon starts the deployment and reads its real outcome from the service-deployment APIs
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServiceDeployments.html).

A circuit-breaker or alarm rollback is a failure even though the service ends "stable" on the
old revision (fabfuel/ecs-deploy reported success there, then deregistered the running
revision). `promote` continues a deployment paused at a lifecycle hook; `rollback` stops it
with stopType ROLLBACK.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any, Callable

from shipyard import aws
from shipyard.errors import TransientError
from shipyard.photon.aws import spec
from shipyard.photon.aws.resources import Resources

FAILED = ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED", "STOPPED",
          "STOP_REQUESTED")


def infra_policy(r: dict[str, Any]) -> dict[str, Any]:
    """What ECS needs to shift this env's rule: narrower than AWS's managed
    AmazonECSInfrastructureRolePolicyForLoadBalancers (which allows any rule and listener)."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth",
                                       "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeRules"],
         "Resource": "*"},
        {"Effect": "Allow", "Action": ["elasticloadbalancing:ModifyRule"], "Resource": [r["rule"]]},
        {"Effect": "Allow", "Action": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
         "Resource": sorted(r["target_groups"].values())},
    ]}


def infra_role(res: Resources) -> str:
    """The role ECS uses to move the listener rule (photon-made, an inline policy for this env)."""
    name = res.n["infra_role"]
    with aws.aws_errors(f"reading IAM role {name}"):
        try:
            arn = res.iam.get_role(RoleName=name)["Role"]["Arn"]
        except res.iam.exceptions.NoSuchEntityException:
            dep = res.dep
            assert dep is not None
            arn = res.iam.create_role(RoleName=name, AssumeRolePolicyDocument=spec.TRUST_ECS,
                                      Description="photon: ECS shifts this env's listener rule",
                                      Tags=spec.tag_list(dep))["Role"]["Arn"]
        res.iam.put_role_policy(RoleName=name, PolicyName="photon", PolicyDocument=json.dumps(infra_policy(res.r)))
    if name not in res.r.setdefault("roles", []):
        res.r["roles"].append(name)
    return arn


def start(res: Resources, task_definition: str) -> str:
    """Create or update the env's one service; the moment the deployment was asked for."""
    dep = res.dep
    assert dep is not None and dep.aws is not None
    name, r = res.n["native_service"], res.r
    params = spec.service_params(dep, cluster=r["cluster"], name=name, task_definition_arn=task_definition,
                                 target_group=r["target_groups"]["blue"], desired=dep.aws.desired)
    params["loadBalancers"][0]["advancedConfiguration"] = {
        "alternateTargetGroupArn": r["target_groups"]["green"], "productionListenerRule": r["rule"],
        "roleArn": infra_role(res)}
    params["deploymentConfiguration"] = spec.native_deployment_configuration(dep)
    params["deploymentController"] = {"type": "ECS"}
    asked = datetime.now(timezone.utc)
    with aws.aws_errors(f"creating or updating service {name}"):
        if res.describe_service("native") is None:
            res.ecs.create_service(**params)
        else:
            res.ecs.update_service(cluster=r["cluster"], service=name, taskDefinition=task_definition,
                                   desiredCount=params["desiredCount"],
                                   deploymentConfiguration=params["deploymentConfiguration"],
                                   loadBalancers=params["loadBalancers"])
    r.setdefault("services", {})["native"] = name
    sc = spec.scaling(dep, r["cluster"], name)
    if sc:
        with aws.aws_errors(f"registering auto scaling for {name}"):
            res.scaling.register_scalable_target(**sc[0])
            res.scaling.put_scaling_policy(**sc[1])
        r.setdefault("scaling", {})["native"] = sc[0]["ResourceId"]
    return asked.isoformat()


def _latest(res: Resources) -> dict[str, Any] | None:
    with aws.aws_errors("listing service deployments"):
        found = res.ecs.list_service_deployments(cluster=res.r["cluster"], service=res.n["native_service"])
    briefs = sorted(found.get("serviceDeployments", []), key=lambda d: str(d.get("createdAt", "")))
    if not briefs:
        return None
    with aws.aws_errors("describing the service deployment"):
        full = res.ecs.describe_service_deployments(serviceDeploymentArns=[briefs[-1]["serviceDeploymentArn"]])
    return (full.get("serviceDeployments") or [None])[0]


def outcome(d: dict[str, Any]) -> tuple[str, str]:
    """("done" | "failed" | "running", reason) of a service deployment, from what ECS says."""
    status = d.get("status", "")
    breaker = (d.get("deploymentCircuitBreaker") or {}).get("status") == "TRIGGERED"
    rolled = d.get("rollback") is not None
    why = d.get("statusReason") or (d.get("rollback") or {}).get("reason") or status.lower()
    if status in FAILED or breaker or rolled:
        if status in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED"):
            return "running", why
        cause = "circuit breaker" if breaker else "ECS"
        return "failed", f"{cause} rolled the deployment back ({status}): {why}"
    if status == "SUCCESSFUL":
        return "done", ""
    return "running", status


def watch(res: Resources, *, timeout: float, tick: float, sleep: Callable[[float], None],
          take_request: Callable[[], str | None], progress: Callable[[dict[str, Any]], None]) -> tuple[bool, str]:
    """Follow the newest deployment of the env's service to its end: (succeeded, reason)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = _latest(res)
        if d is not None:
            state, why = outcome(d)
            if state == "done":
                return True, ""
            if state == "failed":
                return False, why
            op = take_request()
            if op == "rollback":
                with aws.aws_errors("stopping the service deployment"):
                    res.ecs.stop_service_deployment(serviceDeploymentArn=d["serviceDeploymentArn"], stopType="ROLLBACK")
            elif op == "promote":
                for hook in [h for h in d.get("lifecycleHookDetails") or [] if h.get("status") != "SUCCEEDED"]:
                    with aws.aws_errors("continuing the service deployment"):
                        res.ecs.continue_service_deployment(serviceDeploymentArn=d["serviceDeploymentArn"],
                                                            hookId=hook["hookId"], action="CONTINUE")
            progress({"kind": "tick", "phase": f"ecs {d.get('status', '').lower()} {d.get('lifecycleStage', '')}".strip(),
                      "percent": 0, "error_rate": None, "requests": 0, "time_left": max(0.0, deadline - time.monotonic())})
        sleep(tick)
    raise TransientError(f"the ECS deployment of {res.n['native_service']} did not finish in {timeout:g}s",
                         hint="`shipyard photon status` shows it; ECS keeps going on its own")
