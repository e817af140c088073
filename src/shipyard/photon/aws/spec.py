"""What photon asks AWS for, as plain data: names, task definition, service, rule, scaling, IAM.

Pure functions of the deployment file (and ARNs already known), so tests check them without
AWS and `plan` can show them. Vendor references:
- task definitions: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html
- secrets valueFrom: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar.html
- weighted forward actions (weights 0-999): https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html#forward-actions
- ECS deployment strategies: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-blue-green.html
"""

from __future__ import annotations

import hashlib
import json
import math
import shlex
from typing import Any

from shipyard.errors import InputError
from shipyard.photon.model import Deployment
from shipyard.photon.secrets import parse

COLOURS = ("blue", "green")
MAX_WEIGHT = 999  # ALB's limit for a target group's weight in a forward action
ADOT_PORT_ENDPOINT = "http://localhost:4318"  # the ADOT sidecar's OTLP/HTTP receiver


def names(service: str, env: str) -> dict[str, Any]:
    """Every name photon gives to this service+env's resources."""
    h = hashlib.sha1(f"{service}/{env}".encode()).hexdigest()[:6]
    short = f"{service[:10]}-{env[:10]}".rstrip("-")
    return {
        "family": f"photon-{service}-{env}",
        "log_group": f"/photon/{service}/{env}",
        "service": {c: f"{service}-{env}-{c}" for c in COLOURS},
        "native_service": f"{service}-{env}",
        # Target group names: at most 32 characters, unique in the account and region.
        "target_group": {c: f"p{h}-{short}-{c[0]}"[:32] for c in COLOURS},
        "exec_role": f"photon-{h}-{service}-{env}-exec"[:64],
        "task_role": f"photon-{h}-{service}-{env}-task"[:64],
        "infra_role": f"photon-{h}-{service}-{env}-ecs"[:64],
    }


def tags(dep: Deployment) -> dict[str, str]:
    return {"shipyard:service": dep.service, "shipyard:env": dep.env, "shipyard:managed-by": "photon"}


def tag_list(dep: Deployment, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in tags(dep).items()]


def host(dep: Deployment) -> str:
    assert dep.aws is not None
    return dep.aws.expose.host.replace("{service}", dep.service).replace("{env}", dep.env)


def weights(percent: int) -> tuple[int, int]:
    """(new, old) forward weights for `percent` of requests on the new target group."""
    new = round(MAX_WEIGHT * percent / 100)
    return new, MAX_WEIGHT - new


def secret_refs(dep: Deployment) -> dict[str, tuple[str, str, str | None]]:
    """NAME -> (kind, name, key); env:/file: refuse, they would put a value into the task definition."""
    out = {}
    for name, ref in dep.config.secrets.items():
        kind, target, key = parse(ref)
        if kind not in ("ssm", "secretsmanager"):
            raise InputError(f"config.secrets.{name} ({kind}:...) cannot be used on AWS",
                             hint="store it in SSM Parameter Store or Secrets Manager and reference it "
                                  "(ssm:/path or secretsmanager:name#key): a task definition must hold ARNs only",
                             field=f"config.secrets.{name}")
        out[name] = (kind, target, key)
    return out


def value_from(kind: str, arn: str, key: str | None) -> str:
    """The `valueFrom` of a secret: the parameter ARN, or secret ARN[:json-key::]."""
    return f"{arn}:{key}::" if kind == "secretsmanager" and key else arn


def environment(dep: Deployment) -> dict[str, str]:
    """vars plus the OTEL variables; traces go to the ADOT sidecar unless the file names an endpoint."""
    env = dict(dep.config.vars)
    if dep.tracing.enabled:
        env["OTEL_SERVICE_NAME"] = dep.service
        env["OTEL_RESOURCE_ATTRIBUTES"] = (f"service.name={dep.service},deployment.environment={dep.env},"
                                           f"service.version={dep.release_version}")
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = dep.tracing.otlp_endpoint or ADOT_PORT_ENDPOINT
    return env


def task_definition(dep: Deployment, *, region: str, exec_role: str, task_role: str,
                    secrets: dict[str, str]) -> dict[str, Any]:
    """RegisterTaskDefinition parameters; `secrets` maps NAME -> valueFrom ARN (never a value)."""
    a, n = dep.aws, names(dep.service, dep.env)
    assert a is not None
    h = dep.container.health
    awslogs = {"logDriver": "awslogs", "options": {"awslogs-group": n["log_group"], "awslogs-region": region,
                                                   "awslogs-stream-prefix": "photon"}}
    app: dict[str, Any] = {
        "name": "app", "image": dep.image, "essential": True,
        "portMappings": [{"containerPort": dep.container.port, "protocol": "tcp"}],
        "environment": [{"name": k, "value": v} for k, v in sorted(environment(dep).items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(secrets.items())],
        "healthCheck": {"command": ["CMD-SHELL", f"curl -fsS {shlex.quote(f'http://localhost:{dep.container.port}{h.path}')} || exit 1"],
                        "interval": max(5, min(300, int(h.interval))), "timeout": max(2, min(60, int(h.timeout))),
                        "retries": 3, "startPeriod": min(300, int(h.start_timeout))},
        "logConfiguration": awslogs,
    }
    containers = [app]
    if dep.logging.firelens:
        app["logConfiguration"] = {"logDriver": "awsfirelens", "options": dict(dep.logging.firelens.options)}
        containers.append({"name": "log_router", "image": dep.logging.firelens.image, "essential": True,
                           "firelensConfiguration": {"type": "fluentbit"}, "logConfiguration": awslogs})
    if dep.tracing.enabled:
        containers.append({"name": "aws-otel-collector", "image": a.adot_image, "essential": False,
                           "command": ["--config=/etc/ecs/ecs-default-config.yaml"], "logConfiguration": awslogs})
    return {
        "family": n["family"], "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": str(a.cpu), "memory": str(a.memory),
        "runtimePlatform": {"cpuArchitecture": a.arch, "operatingSystemFamily": "LINUX"},
        "executionRoleArn": exec_role, "taskRoleArn": task_role,
        "containerDefinitions": containers, "tags": tag_list(dep, "key", "value"),
    }


def service_params(dep: Deployment, *, cluster: str, name: str, task_definition_arn: str, target_group: str,
                   desired: int) -> dict[str, Any]:
    """CreateService parameters of one colour (orchestrated driver)."""
    a = dep.aws
    assert a is not None
    conf: dict[str, Any] = {"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                            "minimumHealthyPercent": 100, "maximumPercent": 200}
    if dep.deploy.gates.alarms:
        conf["alarms"] = {"alarmNames": list(dep.deploy.gates.alarms), "enable": True, "rollback": True}
    return {
        "cluster": cluster, "serviceName": name, "taskDefinition": task_definition_arn, "desiredCount": desired,
        "launchType": "FARGATE",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": list(a.subnets), "securityGroups": list(a.security_groups),
                                                         "assignPublicIp": "ENABLED" if a.assign_public_ip else "DISABLED"}},
        "loadBalancers": [{"targetGroupArn": target_group, "containerName": "app", "containerPort": dep.container.port}],
        "healthCheckGracePeriodSeconds": min(7200, int(dep.container.health.start_timeout)),
        "deploymentConfiguration": conf, "propagateTags": "SERVICE", "enableECSManagedTags": True,
        "tags": tag_list(dep, "key", "value"),
    }


def native_deployment_configuration(dep: Deployment) -> dict[str, Any]:
    """ECS's own strategy for the native driver (bake times in whole minutes, rounded up)."""
    s, d = dep.deploy.strategy, dep.deploy

    def minutes(sec: float) -> int:
        return max(0, math.ceil(sec / 60))

    conf: dict[str, Any] = {"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                            "bakeTimeInMinutes": minutes(d.bake)}
    if s.type == "all_at_once":
        conf = {"strategy": "ROLLING", "deploymentCircuitBreaker": {"enable": True, "rollback": True},
                "minimumHealthyPercent": 100, "maximumPercent": 200}
    elif s.type == "blue_green":
        conf["strategy"] = "BLUE_GREEN"
    elif s.type == "canary":
        conf["strategy"] = "CANARY"
        conf["canaryConfiguration"] = {"canaryPercent": float(s.percent), "canaryBakeTimeInMinutes": minutes(s.bake)}
    else:
        conf["strategy"] = "LINEAR"
        conf["linearConfiguration"] = {"stepPercent": float(s.step_percent), "stepBakeTimeInMinutes": minutes(s.step_bake)}
    if d.gates.alarms:
        conf["alarms"] = {"alarmNames": list(d.gates.alarms), "enable": True, "rollback": True}
    hooks = dep.aws.lifecycle_hooks if dep.aws else []
    if hooks and s.type != "all_at_once":
        conf["lifecycleHooks"] = [{"hookTargetArn": h.lambda_arn, "roleArn": h.role_arn, "lifecycleStages": list(h.stages)}
                                  for h in hooks]
    return conf


def scaling(dep: Deployment, cluster: str, service_name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(RegisterScalableTarget, PutScalingPolicy) parameters, or None without `aws.scaling`."""
    a = dep.aws
    if a is None or a.scaling is None:
        return None
    ident = {"ServiceNamespace": "ecs", "ResourceId": f"service/{cluster}/{service_name}",
             "ScalableDimension": "ecs:service:DesiredCount"}
    target = {**ident, "MinCapacity": a.scaling.min, "MaxCapacity": a.scaling.max}
    policy = {**ident, "PolicyName": "photon-cpu", "PolicyType": "TargetTrackingScaling",
              "TargetTrackingScalingPolicyConfiguration": {
                  "TargetValue": a.scaling.cpu_target,
                  "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
                  "ScaleInCooldown": 120, "ScaleOutCooldown": 60}}
    return target, policy


TRUST_ECS_TASKS = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
TRUST_ECS = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def execution_policy(log_group_arn: str, secret_arns: list[str], parameter_arns: list[str]) -> dict[str, Any]:
    """The least the ECS agent needs: pull the image, write the log group, read these secrets."""
    stmts: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                       "ecr:BatchCheckLayerAvailability"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"{log_group_arn}:*"},
    ]
    if secret_arns:
        stmts.append({"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": sorted(secret_arns)})
    if parameter_arns:
        stmts.append({"Effect": "Allow", "Action": ["ssm:GetParameters"], "Resource": sorted(parameter_arns)})
    return {"Version": "2012-10-17", "Statement": stmts}
