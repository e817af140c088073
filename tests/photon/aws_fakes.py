"""What moto's server does not do for photon's AWS target, plugged in through botocore's event
hooks on the very clients photon uses (shipyard.aws caches them per service and region).

- `EcsPlacesTasks`: ECS registers a service's tasks into its target group; moto does not. After
  CreateService/UpdateService, register `desiredCount` IP targets (moto reports them healthy).
- `ServiceDeployments`: moto has no ListServiceDeployments / DescribeServiceDeployments /
  StopServiceDeployment / ContinueServiceDeployment. A small fake answers them ("before-call"
  handlers returning a response short-circuit the HTTP call) with a scripted outcome.
- `ParamSpy`: moto drops `deploymentConfiguration` and accepts forward weights above 999;
  the spy records the parameters photon sent so the tests assert them.
Listed in docs/photon.md.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timezone
from typing import Any

from shipyard import aws


class _Ok:
    """The HTTP response botocore expects beside a short-circuited result."""

    status_code = 200
    headers: dict[str, str] = {}


OK = _Ok()


def _args(request: dict[str, Any]) -> dict[str, Any]:
    """The API parameters of a before-call request dict (ECS speaks JSON)."""
    body = request.get("body") or b"{}"
    return json.loads(body.decode() if isinstance(body, bytes) else body)


class ParamSpy:
    def __init__(self, service: str, *operations: str) -> None:
        self.client = aws.client(service)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.hooks = []
        for op in operations:
            event = f"provide-client-params.{service}.{op}"
            handler = self._make(op)
            self.client.meta.events.register(event, handler)
            self.hooks.append((event, handler))

    def _make(self, op: str):
        def record(params: dict[str, Any], **_: Any) -> None:
            self.calls.append((op, params))
        return record

    def of(self, op: str) -> list[dict[str, Any]]:
        return [p for o, p in self.calls if o == op]

    def close(self) -> None:
        for event, handler in self.hooks:
            self.client.meta.events.unregister(event, handler)


class EcsPlacesTasks:
    _ips = itertools.count(10)

    def __init__(self) -> None:
        self.ecs, self.elbv2 = aws.client("ecs"), aws.client("elbv2")
        self.hooks = [("after-call.ecs.CreateService", self.placed), ("after-call.ecs.UpdateService", self.placed)]
        for e, h in self.hooks:
            self.ecs.meta.events.register(e, h)

    def placed(self, parsed: dict[str, Any], **_: Any) -> None:
        svc = parsed.get("service") or {}
        for lb in svc.get("loadBalancers", []):
            tg = lb["targetGroupArn"]
            now = self.elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
            if now:
                self.elbv2.deregister_targets(TargetGroupArn=tg, Targets=[t["Target"] for t in now])
            want = [{"Id": f"10.0.1.{next(self._ips) % 250 + 2}", "Port": lb["containerPort"]}
                    for _ in range(svc.get("desiredCount", 0))]
            if want:
                self.elbv2.register_targets(TargetGroupArn=tg, Targets=want)

    def close(self) -> None:
        for e, h in self.hooks:
            self.ecs.meta.events.unregister(e, h)


class ServiceDeployments:
    """Each UpdateService/CreateService starts a deployment that ends as `outcome` after
    `polls` describe calls: SUCCESSFUL, or ROLLBACK_SUCCESSFUL with a circuit breaker reason."""

    def __init__(self, outcome: str = "SUCCESSFUL", polls: int = 2, reason: str = "") -> None:
        self.ecs = aws.client("ecs")
        self.outcome, self.polls, self.reason = outcome, polls, reason
        self.deployments: list[dict[str, Any]] = []
        self.stopped: list[tuple[str, str]] = []
        self.continued: list[tuple[str, str, str]] = []
        self.hooks = [
            ("after-call.ecs.CreateService", self.started), ("after-call.ecs.UpdateService", self.started),
            ("before-call.ecs.ListServiceDeployments", self.list),
            ("before-call.ecs.DescribeServiceDeployments", self.describe),
            ("before-call.ecs.StopServiceDeployment", self.stop),
            ("before-call.ecs.ContinueServiceDeployment", self.cont),
        ]
        for e, h in self.hooks:
            self.ecs.meta.events.register(e, h)

    def started(self, parsed: dict[str, Any], **_: Any) -> None:
        svc = parsed.get("service") or {}
        n = len(self.deployments) + 1
        self.deployments.append({
            "serviceDeploymentArn": f"{svc.get('serviceArn', 'arn:svc')}/deployment-{n}",
            "serviceArn": svc.get("serviceArn"), "clusterArn": svc.get("clusterArn"),
            "createdAt": datetime.now(timezone.utc), "status": "IN_PROGRESS", "polls": 0})

    @staticmethod
    def _public(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k != "polls"}

    def list(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        params = _args(params)
        mine = [self._public(d) for d in self.deployments if d["serviceArn"] and params["service"] in d["serviceArn"]]
        return OK, {"serviceDeployments": list(reversed(mine))}

    def describe(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        params = _args(params)
        out = []
        for d in self.deployments:
            if d["serviceDeploymentArn"] in params["serviceDeploymentArns"]:
                d["polls"] += 1
                if d["status"] == "IN_PROGRESS" and d["polls"] >= self.polls:
                    d["status"] = self.outcome
                    if self.outcome.startswith("ROLLBACK"):
                        d["statusReason"] = self.reason
                        d["deploymentCircuitBreaker"] = {"status": "TRIGGERED", "failureCount": 3, "threshold": 3}
                        d["rollback"] = {"reason": self.reason, "startedAt": datetime.now(timezone.utc)}
                out.append(self._public(d))
        return OK, {"serviceDeployments": out, "failures": []}

    def stop(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        params = _args(params)
        self.stopped.append((params["serviceDeploymentArn"], params.get("stopType", "")))
        for d in self.deployments:
            if d["serviceDeploymentArn"] == params["serviceDeploymentArn"]:
                d["status"], d["statusReason"] = "ROLLBACK_SUCCESSFUL", "stopped by photon rollback"
        return OK, {"serviceDeploymentArn": params["serviceDeploymentArn"]}

    def cont(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        params = _args(params)
        self.continued.append((params["serviceDeploymentArn"], params["hookId"], params["action"]))
        return OK, {"serviceDeploymentArn": params["serviceDeploymentArn"]}

    def close(self) -> None:
        for e, h in self.hooks:
            self.ecs.meta.events.unregister(e, h)
