"""The AWS target on moto's server (HTTP): create, update, no-op, rollbacks, terminate.

moto gaps are filled by tests/photon/aws_fakes.py (listed in docs/photon.md): ECS placing tasks
into target groups, the service-deployment APIs, and a parameter spy for what moto drops.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from shipyard import aws
from shipyard.photon.model import load
from shipyard.photon.runner import Photon
from tests.photon.aws_fakes import EcsPlacesTasks, ParamSpy
from tests.photon.conftest import outbox

MUTATING = ("RegisterTaskDefinition", "CreateService", "UpdateService", "DeleteService", "CreateCluster")


@pytest.fixture
def net(s3_server):
    """A VPC with two subnets, a security group, an ALB and an HTTP listener; secrets to reference."""
    ec2, elb = aws.client("ec2"), aws.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    sg = ec2.create_security_group(GroupName=f"g{uuid.uuid4().hex[:6]}", Description="d", VpcId=vpc)["GroupId"]
    lb_name = f"lb{uuid.uuid4().hex[:8]}"
    lb = elb.create_load_balancer(Name=lb_name, Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[
        {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])["Listeners"][0]["ListenerArn"]
    aws.client("ssm").put_parameter(Name="/hello/api-key", Value="plain-text-ssm-value", Type="SecureString", Overwrite=True)
    sm = aws.client("secretsmanager")
    try:
        sm.create_secret(Name="hello-db", SecretString=json.dumps({"password": "plain-text-db-password"}))
    except sm.exceptions.ResourceExistsException:
        pass
    placer = EcsPlacesTasks()
    spy = ParamSpy("elbv2", "ModifyRule", "CreateRule")
    ecs_spy = ParamSpy("ecs", *MUTATING)
    yield {"subnets": subnets, "sg": sg, "listener": listener, "lb": lb, "lb_name": lb_name, "spy": spy, "ecs_spy": ecs_spy}
    placer.close()
    spy.close()
    ecs_spy.close()


def write(folder, net, *, env="dev", version="v1", strategy=None, gates=None, name=None, deploy_driver=False,
          listener=None, **extra):
    doc = {"service": "hello", "env": env, "target": "aws", "version": version,
           "image": f"registry.example.com/hello:{version}",
           "container": {"port": 8080, "health": {"path": "/health", "start_timeout": "5s"}},
           "config": {"vars": {"GREETING": "hi"},
                      "secrets": {"API_KEY": "ssm:/hello/api-key", "DB_PASSWORD": "secretsmanager:hello-db#password"}},
           "deploy": {"strategy": strategy or {"type": "blue_green"}, "bake": "0.2s",
                      "gates": gates or {"max_error_rate": 0.05, "window": "60s", "min_requests": 10},
                      "driver": "native" if deploy_driver else "orchestrated"},
           "aws": {"cluster": "photon-test", "subnets": net["subnets"], "security_groups": [net["sg"]],
                   "listener": listener or net["listener"], "expose": {"host": "{service}-{env}.dev.example.com"},
                   "desired": 2, "scaling": {"min": 1, "max": 4, "cpu_target": 50}, "keep_revisions": 2},
           **extra}
    path = folder / (name or f"{env}-{version}.json")
    path.write_text(json.dumps(doc))
    return path


def rule_weights(arn):
    action = aws.client("elbv2").describe_rules(RuleArns=[arn])["Rules"][0]["Actions"][0]
    return [g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]]


def test_create_noop_update_and_terminate_leave_the_other_env(tmp_path, net):
    p = Photon()
    first = p.apply(load(write(tmp_path, net)))
    assert first.status == "deployed", first.reason
    assert first.endpoint == "http://hello-dev.dev.example.com"
    st = json.loads((tmp_path / ".shipyard/photon/hello/dev/state.json").read_text())
    r = st["resources"]
    assert rule_weights(r["rule"]) == [999, 0]  # blue holds everything
    ecs = aws.client("ecs")
    blue = ecs.describe_services(cluster="photon-test", services=["hello-dev-blue"])["services"][0]
    assert blue["desiredCount"] == 2 and blue["loadBalancers"][0]["targetGroupArn"] == r["target_groups"]["blue"]
    # moto drops deploymentConfiguration: the spy shows the circuit breaker photon asked for.
    asked = net["ecs_spy"].of("CreateService")[0]
    assert asked["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert asked["tags"] == [{"key": "shipyard:service", "value": "hello"}, {"key": "shipyard:env", "value": "dev"},
                             {"key": "shipyard:managed-by", "value": "photon"}]
    # Task definition: awsvpc, health check, env, secrets as ARNs, ADOT sidecar; no plaintext secret.
    td = ecs.describe_task_definition(taskDefinition=blue["taskDefinition"])["taskDefinition"]
    assert td["networkMode"] == "awsvpc" and td["requiresCompatibilities"] == ["FARGATE"]
    app = td["containerDefinitions"][0]
    assert {s["name"]: s["valueFrom"] for s in app["secrets"]} == {
        "API_KEY": "arn:aws:ssm:us-east-1:123456789012:parameter/hello/api-key",
        "DB_PASSWORD": aws.client("secretsmanager").describe_secret(SecretId="hello-db")["ARN"] + ":password::"}
    assert "plain-text" not in json.dumps(td, default=str)
    assert app["healthCheck"]["command"][1].startswith("curl -fsS http://localhost:8080/health")
    env = {e["name"]: e["value"] for e in app["environment"]}
    assert env["GREETING"] == "hi" and env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4318"
    assert [c["name"] for c in td["containerDefinitions"]] == ["app", "aws-otel-collector"]
    logs = aws.client("logs").describe_log_groups(logGroupNamePrefix="/photon/hello/dev")["logGroups"]
    assert logs[0]["retentionInDays"] == 14
    tags = aws.client("elbv2").describe_tags(ResourceArns=[r["target_groups"]["blue"]])["TagDescriptions"][0]["Tags"]
    assert {"Key": "shipyard:env", "Value": "dev"} in tags and {"Key": "shipyard:service", "Value": "hello"} in tags
    scal = aws.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    assert [(s["ResourceId"], s["MinCapacity"], s["MaxCapacity"]) for s in scal] == [
        ("service/photon-test/hello-dev-blue", 1, 4)]
    policy = json.loads(aws.client("iam").get_role_policy(RoleName=r["roles"][0], PolicyName="photon")["PolicyDocument"]) \
        if isinstance(aws.client("iam").get_role_policy(RoleName=r["roles"][0], PolicyName="photon")["PolicyDocument"], str) \
        else aws.client("iam").get_role_policy(RoleName=r["roles"][0], PolicyName="photon")["PolicyDocument"]
    assert any(s["Action"] == ["ssm:GetParameters"] for s in policy["Statement"])

    # The same file again: no change, and no mutating call.
    n = len(net["ecs_spy"].calls)
    again = p.apply(load(write(tmp_path, net)))
    assert again.status == "unchanged" and len(net["ecs_spy"].calls) == n

    # A canary update: weights 0-999 stepped on the rule, green takes over, blue scaled to zero.
    net["spy"].calls.clear()
    second = p.apply(load(write(tmp_path, net, version="v2", strategy={"type": "canary", "percent": 10, "bake": "0.2s"})))
    assert second.status == "deployed", second.reason
    sent = [[g["Weight"] for g in c["Actions"][0]["ForwardConfig"]["TargetGroups"]] for c in net["spy"].of("ModifyRule")]
    assert sent == [[899, 100], [0, 999]]  # [blue, green]
    assert all(0 <= w <= 999 for ws in sent for w in ws)
    svcs = {s["serviceName"]: s["desiredCount"] for s in ecs.describe_services(
        cluster="photon-test", services=["hello-dev-blue", "hello-dev-green"])["services"]}
    assert svcs == {"hello-dev-blue": 0, "hello-dev-green": 2}
    assert [s["ResourceId"] for s in aws.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs")["ScalableTargets"]] == ["service/photon-test/hello-dev-green"]
    for v in ("v3", "v4"):  # task definition revisions stay bounded (keep_revisions: 2)
        assert p.apply(load(write(tmp_path, net, version=v))).status == "deployed"
    revs = [a for a in ecs.list_task_definitions(familyPrefix="photon-hello-dev", status="ACTIVE")["taskDefinitionArns"]]
    assert len(revs) == 2 and revs[-1].endswith(":4")
    # `rollback` with no rollout in progress: the previous release's spec, deployed again.
    back = p.operate("hello", "dev", "rollback")
    assert back.status == "deployed" and back.version == "v3"
    assert p.status("hello", "dev")["live"]["version"] == "v3"
    plan = p.plan(load(write(tmp_path, net, version="v5")))
    assert "~ version: 'v3' -> 'v5'" in plan.render() and "~ image: " in plan.render()

    # The release's log: CloudWatch Logs events of the env's log group (as awslogs writes them).
    cwl = aws.client("logs")
    cwl.create_log_stream(logGroupName="/photon/hello/dev", logStreamName="photon/app/task-1")
    cwl.put_log_events(logGroupName="/photon/hello/dev", logStreamName="photon/app/task-1", logEvents=[
        {"timestamp": int(time.time() * 1000), "message": "hello from v3"}])
    got = list(p.logs("hello", "dev"))
    assert [(x["stream"], x["message"]) for x in got] == [("photon/app/task-1", "hello from v3")]
    assert got[0]["release"] == p.status("hello", "dev")["live"]["release"]

    # Another env (its listener named as <load-balancer>:<port>), then terminate dev: exactly dev's resources go.
    other = p.apply(load(write(tmp_path, net, env="other", listener=f"{net['lb_name']}:80")))
    assert other.status == "deployed"
    gone = p.terminate("hello", "dev")
    assert gone.status == "terminated"
    elb = aws.client("elbv2")
    rules = [x["RuleArn"] for x in elb.describe_rules(ListenerArn=net["listener"])["Rules"] if not x["IsDefault"]]
    other_state = json.loads((tmp_path / ".shipyard/photon/hello/other/state.json").read_text())["resources"]
    assert rules == [other_state["rule"]]
    left = {s["serviceName"] for s in ecs.describe_services(
        cluster="photon-test", services=["hello-dev-blue", "hello-dev-green", "hello-other-blue"])["services"]
        if s["status"] == "ACTIVE"}
    assert left == {"hello-other-blue"}
    families = {a.rsplit("/", 1)[1].rsplit(":", 1)[0] for a in ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]}
    assert "photon-hello-dev" not in families and "photon-hello-other" in families
    assert not aws.client("logs").describe_log_groups(logGroupNamePrefix="/photon/hello/dev")["logGroups"]
    roles = {x["RoleName"] for x in aws.client("iam").list_roles()["Roles"]}
    assert not any("-hello-dev-" in x for x in roles) and any("-hello-other-" in x for x in roles)
    assert outbox(tmp_path)[-1]["title"] == "hello/dev terminated"
    p.terminate("hello", "other")


def test_rollback_by_alarm_and_by_error_rate(tmp_path, net):
    cw = aws.client("cloudwatch")
    cw.put_metric_alarm(AlarmName="hello-5xx", MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
                        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")
    cw.set_alarm_state(AlarmName="hello-5xx", StateValue="OK", StateReason="test")
    p = Photon()
    gates = {"max_error_rate": 0.05, "window": "120s", "min_requests": 10, "alarms": ["hello-5xx"]}
    assert p.apply(load(write(tmp_path, net, gates=gates))).status == "deployed"
    elb = aws.client("elbv2")

    def canary_while_green_gets_traffic(version, then):
        """Apply a canary; `then()` runs when the rule first sends requests to both colours."""
        def hook(params, **_):
            weights = [g["Weight"] for g in params["Actions"][0]["ForwardConfig"]["TargetGroups"]]
            if weights[1] and weights[0]:
                then()

        elb.meta.events.register("provide-client-params.elbv2.ModifyRule", hook)
        try:
            return p.apply(load(write(tmp_path, net, version=version, gates=gates,
                                      strategy={"type": "canary", "percent": 20, "bake": "30s"})))
        finally:
            elb.meta.events.unregister("provide-client-params.elbv2.ModifyRule", hook)

    out = canary_while_green_gets_traffic(
        "v2", lambda: cw.set_alarm_state(AlarmName="hello-5xx", StateValue="ALARM", StateReason="5xx"))
    assert out.status == "rolled_back" and out.reason == "alarm in ALARM: hello-5xx"
    st = p.status("hello", "dev")
    r = json.loads((tmp_path / ".shipyard/photon/hello/dev/state.json").read_text())["resources"]
    assert st["live"]["release"] == "r1" and rule_weights(r["rule"]) == [999, 0]
    green = aws.client("ecs").describe_services(cluster="photon-test", services=["hello-dev-green"])["services"][0]
    assert green["desiredCount"] == 0  # the loser is scaled to zero
    assert "alarm" in outbox(tmp_path)[-1]["message"]
    cw.set_alarm_state(AlarmName="hello-5xx", StateValue="OK", StateReason="test")

    # Error rate: the green target group answers 30% 5xx (ALB metrics put as the ALB would).
    lb_dim = net["lb"].split(":loadbalancer/")[-1]

    def thirty_percent_5xx():
        tg = r["target_groups"]["green"].split(":")[-1]
        dims = [{"Name": "TargetGroup", "Value": tg}, {"Name": "LoadBalancer", "Value": lb_dim}]
        cw.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=[
            {"MetricName": "RequestCount", "Dimensions": dims, "Value": 100, "Unit": "Count"},
            {"MetricName": "HTTPCode_Target_5XX_Count", "Dimensions": dims, "Value": 30, "Unit": "Count"}])

    out = canary_while_green_gets_traffic("v3", thirty_percent_5xx)
    assert out.status == "rolled_back" and out.reason.startswith("error rate 30.0%"), out.reason
    assert rule_weights(r["rule"]) == [999, 0]

    # ECS's circuit breaker fails the new colour's deployment: a failure at once, before any traffic
    # (moto's deployments stay IN_PROGRESS; the answer is edited as ECS would report it).
    ecs = aws.client("ecs")

    def breaker(parsed, **_):
        for svc in parsed.get("services", []):
            if svc["serviceName"].endswith("-green"):
                for d in svc.get("deployments", []):
                    d.update(rolloutState="FAILED", rolloutStateReason="circuit breaker: tasks failed to start")

    ecs.meta.events.register("after-call.ecs.DescribeServices", breaker)
    net["spy"].calls.clear()
    try:
        out = p.apply(load(write(tmp_path, net, version="v4", gates=gates)))
    finally:
        ecs.meta.events.unregister("after-call.ecs.DescribeServices", breaker)
    assert out.status == "rolled_back"
    assert out.reason == ("the release stopped before it was healthy: "
                          "ECS deployment failed: circuit breaker: tasks failed to start")
    assert [c for c in net["spy"].of("ModifyRule")
            if c["Actions"][0]["ForwardConfig"]["TargetGroups"][1]["Weight"]] == []  # green never got traffic
    p.terminate("hello", "dev")


def test_env_and_file_secrets_are_refused_on_aws_before_anything_is_made(tmp_path, net):
    path = write(tmp_path, net)
    doc = json.loads(path.read_text())
    doc["config"]["secrets"]["LEAK"] = "env:HOME"
    path.write_text(json.dumps(doc))
    from shipyard.errors import InputError

    with pytest.raises(InputError, match=r"config.secrets.LEAK \(env:...\) cannot be used on AWS"):
        Photon().apply(load(path))
    assert not net["ecs_spy"].calls


def test_native_driver_maps_the_strategy_and_reads_the_real_outcome(tmp_path, net):
    from tests.photon.aws_fakes import ServiceDeployments

    p = Photon()
    ok = ServiceDeployments("SUCCESSFUL", polls=2)
    try:
        first = p.apply(load(write(tmp_path, net, strategy={"type": "canary", "percent": 10, "bake": "90s"},
                                   gates={"alarms": ["hello-5xx"]}, deploy_driver=True)))
    finally:
        ok.close()
    assert first.status == "deployed", first.reason
    sent = net["ecs_spy"].of("CreateService")[-1]
    # moto drops deploymentConfiguration; the spy shows what photon asked ECS for.
    assert sent["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}, "bakeTimeInMinutes": 1,
        "strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 2},
        "alarms": {"alarmNames": ["hello-5xx"], "enable": True, "rollback": True}}
    adv = sent["loadBalancers"][0]["advancedConfiguration"]
    r = json.loads((tmp_path / ".shipyard/photon/hello/dev/state.json").read_text())["resources"]
    assert adv["alternateTargetGroupArn"] == r["target_groups"]["green"] and adv["productionListenerRule"] == r["rule"]
    assert sent["serviceName"] == "hello-dev"

    # The circuit breaker rolls v2 back: the service is "stable" on v1, photon says failure.
    bad = ServiceDeployments("ROLLBACK_SUCCESSFUL", polls=2, reason="tasks failed to start")
    try:
        second = p.apply(load(write(tmp_path, net, version="v2", strategy={"type": "linear", "step_percent": 25,
                                                                          "step_bake": "60s"}, deploy_driver=True)))
    finally:
        bad.close()
    assert second.status == "rolled_back"
    assert second.reason.startswith("circuit breaker rolled the deployment back (ROLLBACK_SUCCESSFUL)")
    assert net["ecs_spy"].of("UpdateService")[-1]["deploymentConfiguration"]["linearConfiguration"] == {
        "stepPercent": 25.0, "stepBakeTimeInMinutes": 1}
    st = p.status("hello", "dev")
    assert st["live"]["version"] == "v1" and outbox(tmp_path)[-1]["level"] == "failure"

    # rollback asked from another terminal during a long deployment: stop_service_deployment(ROLLBACK).
    import threading

    slow = ServiceDeployments("SUCCESSFUL", polls=10_000)
    result = {}
    t = threading.Thread(target=lambda: result.update(o=p.apply(load(write(
        tmp_path, net, version="v3", deploy_driver=True)))))
    try:
        t.start()
        while not slow.deployments or slow.deployments[-1]["polls"] < 2:
            pass
        assert Photon().operate("hello", "dev", "rollback").status == "asked"
        t.join(timeout=30)
    finally:
        slow.close()
    assert slow.stopped and slow.stopped[-1][1] == "ROLLBACK"
    assert result["o"].status == "rolled_back" and "stopped by photon rollback" in result["o"].reason
    p.terminate("hello", "dev")
    assert not [x for x in aws.client("elbv2").describe_rules(ListenerArn=net["listener"])["Rules"] if not x["IsDefault"]]
