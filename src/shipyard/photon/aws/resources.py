"""The AWS resources of one service+env: create or update each, and delete exactly them.

`Resources(ctx).r` is the env's inventory in the state file (`resources`): region, cluster,
listener, rule, target groups, services, task definition family, log group, and the IAM roles
photon made. Commands without the file (status, terminate, rollback) work from it alone.
Creation is idempotent: what exists is found and updated, not duplicated.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from shipyard import aws
from shipyard.errors import InputError
from shipyard.photon.aws import spec
from shipyard.photon.targets.base import Ctx


class Resources:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx, self.dep = ctx, ctx.dep
        self.r = ctx.state.resources
        if self.dep is not None and self.dep.aws is not None:
            self.r["region"] = aws.region_name(self.dep.aws.region)
            self.r.setdefault("cluster", self.dep.aws.cluster)
            self.r["desired"] = self.dep.aws.desired
            self.r["alarms"] = list(self.dep.deploy.gates.alarms)
            self.r["keep_log_group"] = self.dep.logging.keep_log_group
        self.n = spec.names(ctx.dir.service, ctx.dir.env)
        region = self.r.get("region")
        self.ecs = aws.client("ecs", region=region)
        self.elbv2 = aws.client("elbv2", region=region)
        self.cloudwatch = aws.client("cloudwatch", region=region)
        self.logs = aws.client("logs", region=region)
        self.iam = aws.client("iam", region=region)
        self.scaling = aws.client("application-autoscaling", region=region)

    # ---- base: cluster, logs, roles, target groups, rule ------------------------------------
    def ensure_base(self) -> None:
        dep = self.dep
        assert dep is not None and dep.aws is not None
        a, r = dep.aws, self.r
        with aws.aws_errors(f"checking ECS cluster {a.cluster}"):
            found = self.ecs.describe_clusters(clusters=[a.cluster])["clusters"]
        if not any(c.get("status") == "ACTIVE" for c in found):
            with aws.aws_errors(f"creating ECS cluster {a.cluster}"):
                # Tagged: untagged clusters also break tag-based lookups (moto's get_resources).
                self.ecs.create_cluster(clusterName=a.cluster, tags=[{"key": "shipyard:managed-by", "value": "photon"}])
        self._log_group()
        self._roles()
        listener = self._listener(a.listener)
        r["listener"], r["load_balancer"], r["protocol"] = listener["ListenerArn"], listener["LoadBalancerArn"], listener["Protocol"]
        vpc = a.vpc_id or self._vpc_of(a.subnets[0])
        tgs = r.setdefault("target_groups", {})
        for colour in spec.COLOURS:
            tgs[colour] = self._target_group(self.n["target_group"][colour], vpc)
        r["host"] = spec.host(dep)
        if not r.get("rule") or not self._rule_exists(r["rule"]):
            with aws.aws_errors("creating the listener rule"):
                r["rule"] = self.elbv2.create_rule(
                    ListenerArn=r["listener"], Priority=self._free_priority(r["listener"]),
                    Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [r["host"]]}}],
                    Actions=[self._forward({"blue": spec.MAX_WEIGHT, "green": 0})], Tags=spec.tag_list(dep),
                )["Rules"][0]["RuleArn"]
            r["weights"] = {"blue": spec.MAX_WEIGHT, "green": 0}
        self.ctx.dir.save(self.ctx.state)

    def _target_group(self, name: str, vpc: str) -> str:
        """The env's target group: found by name (and its health check kept current), else made."""
        dep = self.dep
        assert dep is not None
        with aws.aws_errors(f"reading target group {name}"):
            try:
                arn = self.elbv2.describe_target_groups(Names=[name])["TargetGroups"][0]["TargetGroupArn"]
            except self.elbv2.exceptions.TargetGroupNotFoundException:
                arn = None
        with aws.aws_errors(f"creating or updating target group {name}"):
            if arn is None:
                return self.elbv2.create_target_group(
                    Name=name, Protocol="HTTP", Port=dep.container.port, VpcId=vpc, TargetType="ip",
                    HealthCheckPath=dep.container.health.path, HealthCheckIntervalSeconds=10,
                    Matcher={"HttpCode": "200-399"}, Tags=spec.tag_list(dep))["TargetGroups"][0]["TargetGroupArn"]
            self.elbv2.modify_target_group(TargetGroupArn=arn, HealthCheckPath=dep.container.health.path)
            return arn

    def _listener(self, ref: str) -> dict[str, Any]:
        """The listener named by its ARN, or by `<load-balancer-name>:<port>`."""
        with aws.aws_errors(f"reading listener {ref}"):
            if ref.startswith("arn:"):
                return self.elbv2.describe_listeners(ListenerArns=[ref])["Listeners"][0]
            name, _, port = ref.rpartition(":")
            if not name or not port.isdigit():
                raise InputError(f"aws.listener {ref!r} is neither a listener ARN nor <load-balancer-name>:<port>",
                                 field="aws.listener")
            lb = self.elbv2.describe_load_balancers(Names=[name])["LoadBalancers"][0]["LoadBalancerArn"]
            found = [x for x in self.elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"] if x["Port"] == int(port)]
        if not found:
            raise InputError(f"aws.listener: load balancer {name} has no listener on port {port}", field="aws.listener")
        return found[0]

    def endpoint(self) -> str:
        return f"{'https' if self.r.get('protocol') == 'HTTPS' else 'http'}://{self.r['host']}"

    def _vpc_of(self, subnet: str) -> str:
        with aws.aws_errors(f"reading subnet {subnet}"):
            return aws.client("ec2", region=self.r.get("region")).describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]

    def _log_group(self) -> None:
        dep = self.dep
        assert dep is not None
        name = self.n["log_group"]
        with aws.aws_errors(f"creating log group {name}"):
            try:
                self.logs.create_log_group(logGroupName=name, tags=spec.tags(dep))
            except self.logs.exceptions.ResourceAlreadyExistsException:
                pass
        with aws.aws_errors(f"setting the retention of {name}"):
            self.logs.put_retention_policy(logGroupName=name, retentionInDays=dep.logging.retention_days)
        self.r["log_group"] = name

    def _roles(self) -> None:
        dep = self.dep
        assert dep is not None and dep.aws is not None
        made = self.r.setdefault("roles", [])
        for kind, given in (("exec_role", dep.aws.execution_role_arn), ("task_role", dep.aws.task_role_arn)):
            if given:
                self.r[kind] = given
                continue
            name = self.n[kind]
            with aws.aws_errors(f"reading IAM role {name}"):
                try:
                    arn = self.iam.get_role(RoleName=name)["Role"]["Arn"]
                except self.iam.exceptions.NoSuchEntityException:
                    arn = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=spec.TRUST_ECS_TASKS,
                                               Description=f"photon {dep.service}/{dep.env}", Tags=spec.tag_list(dep))["Role"]["Arn"]
            self.r[kind] = arn
            if name not in made:
                made.append(name)

    def secret_arns(self) -> dict[str, str]:
        """NAME -> valueFrom for the task definition; also narrows the execution role's policy."""
        dep = self.dep
        assert dep is not None
        refs = spec.secret_refs(dep)
        region = self.r["region"]
        out, params, secrets = {}, [], []
        for name, (kind, target, key) in refs.items():
            if kind == "ssm":
                arn = f"arn:aws:ssm:{region}:{aws.account_id()}:parameter{target if target.startswith('/') else '/' + target}"
                params.append(arn)
            else:
                with aws.aws_errors(f"config.secrets.{name} (secretsmanager:{target})"):
                    arn = aws.client("secretsmanager", region=region).describe_secret(SecretId=target)["ARN"]
                secrets.append(arn)
            out[name] = spec.value_from(kind, arn, key)
        if self.n["exec_role"] in self.r.get("roles", []):
            log_arn = f"arn:aws:logs:{region}:{aws.account_id()}:log-group:{self.n['log_group']}"
            with aws.aws_errors("writing the execution role's policy"):
                self.iam.put_role_policy(RoleName=self.n["exec_role"], PolicyName="photon",
                                         PolicyDocument=json.dumps(spec.execution_policy(log_arn, secrets, params)))
        return out

    # ---- task definitions and services ----------------------------------------------------------
    def register_task_definition(self, keep_in_use: set[str]) -> str:
        dep = self.dep
        assert dep is not None and dep.aws is not None
        params = spec.task_definition(dep, region=self.r["region"], exec_role=self.r["exec_role"],
                                      task_role=self.r["task_role"], secrets=self.secret_arns())
        with aws.aws_errors("registering the task definition"):
            arn = self.ecs.register_task_definition(**params)["taskDefinition"]["taskDefinitionArn"]
        self.r["family"] = self.n["family"]
        self.prune_revisions(dep.aws.keep_revisions, keep_in_use | {arn})
        return arn

    def revisions(self) -> list[str]:
        """ACTIVE revisions of exactly this env's family, oldest first."""
        family = self.n["family"]
        arns = aws.paginate(self.ecs, "list_task_definitions", "taskDefinitionArns", familyPrefix=family,
                            status="ACTIVE", sort="ASC", what="listing task definitions")
        # familyPrefix is a prefix: photon-hello-dev would also match photon-hello-dev2.
        return [a for a in arns if a.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family]

    def prune_revisions(self, keep: int, in_use: set[str]) -> None:
        old = self.revisions()
        for arn in old[:-keep] if len(old) > keep else []:
            if arn not in in_use:
                with aws.aws_errors("deregistering an old task definition"):
                    self.ecs.deregister_task_definition(taskDefinition=arn)

    def describe_service(self, colour: str) -> dict[str, Any] | None:
        name = self.n["service"].get(colour, self.n["native_service"])
        with aws.aws_errors(f"describing service {name}"):
            found = self.ecs.describe_services(cluster=self.r["cluster"], services=[name])["services"]
        return next((s for s in found if s.get("status") == "ACTIVE"), None)

    def put_service(self, colour: str, task_definition: str) -> None:
        dep = self.dep
        assert dep is not None and dep.aws is not None
        name = self.n["service"][colour]
        params = spec.service_params(dep, cluster=self.r["cluster"], name=name, task_definition_arn=task_definition,
                                     target_group=self.r["target_groups"][colour], desired=dep.aws.desired)
        with aws.aws_errors(f"creating or updating service {name}"):
            if self.describe_service(colour) is None:
                self.ecs.create_service(**params)
            else:
                self.ecs.update_service(cluster=params["cluster"], service=name, taskDefinition=task_definition,
                                        desiredCount=params["desiredCount"],
                                        deploymentConfiguration=params["deploymentConfiguration"],
                                        networkConfiguration=params["networkConfiguration"],
                                        healthCheckGracePeriodSeconds=params["healthCheckGracePeriodSeconds"])
        self.r.setdefault("services", {})[colour] = name
        sc = spec.scaling(dep, self.r["cluster"], name)
        if sc:
            with aws.aws_errors(f"registering auto scaling for {name}"):
                self.scaling.register_scalable_target(**sc[0])
                self.scaling.put_scaling_policy(**sc[1])
            self.r.setdefault("scaling", {})[colour] = sc[0]["ResourceId"]

    def scale_to_zero(self, colour: str) -> None:
        name = self.n["service"].get(colour, self.n["native_service"])
        target = self.r.get("scaling", {}).pop(colour, None)
        if target:
            with aws.aws_errors(f"removing auto scaling of {name}"):
                try:
                    self.scaling.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=target,
                                                            ScalableDimension="ecs:service:DesiredCount")
                except self.scaling.exceptions.ObjectNotFoundException:
                    pass
        if self.describe_service(colour) is not None:
            with aws.aws_errors(f"scaling {name} to zero"):
                self.ecs.update_service(cluster=self.r["cluster"], service=name, desiredCount=0)

    # ---- traffic --------------------------------------------------------------------------------
    def _forward(self, weights: dict[str, int]) -> dict[str, Any]:
        tgs = self.r["target_groups"]
        assert all(0 <= w <= spec.MAX_WEIGHT for w in weights.values()), weights
        return {"Type": "forward", "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": tgs[c], "Weight": int(weights.get(c, 0))} for c in spec.COLOURS],
            "TargetGroupStickinessConfig": {"Enabled": False}}}

    def forward(self, weights: dict[str, int]) -> None:
        if self.r.get("weights") == weights:
            return  # already so (promote after a last step to 100%): no API call
        with aws.aws_errors("shifting the listener rule's weights"):
            self.elbv2.modify_rule(RuleArn=self.r["rule"], Actions=[self._forward(weights)])
        self.r["weights"] = weights

    def _rule_exists(self, arn: str) -> bool:
        with aws.aws_errors("reading the listener rule"):
            try:
                return bool(self.elbv2.describe_rules(RuleArns=[arn])["Rules"])
            except self.elbv2.exceptions.RuleNotFoundException:
                return False

    def _free_priority(self, listener: str) -> int:
        used = {r["Priority"] for r in aws.paginate(self.elbv2, "describe_rules", "Rules", ListenerArn=listener,
                                                      what="listing listener rules")}
        start = int(self.n["target_group"]["blue"][1:7], 16) % 40000 + 1
        for p in range(start, 50000):
            if str(p) not in used:
                return p
        raise InputError(f"listener {listener} has no free rule priority")

    def metric_sum(self, metric: str, target_group: str, since: datetime) -> int:
        dims = [{"Name": "TargetGroup", "Value": target_group.split(":")[-1]},
                {"Name": "LoadBalancer", "Value": self.r["load_balancer"].split(":loadbalancer/")[-1]}]
        now = datetime.now(timezone.utc)
        with aws.aws_errors(f"reading {metric}"):
            points = self.cloudwatch.get_metric_statistics(
                Namespace="AWS/ApplicationELB", MetricName=metric, Dimensions=dims, StartTime=since,
                EndTime=now + timedelta(minutes=1), Period=60, Statistics=["Sum"])["Datapoints"]
        return int(sum(p["Sum"] for p in points))

    # ---- terminate ------------------------------------------------------------------------------
    def delete_all(self) -> list[str]:
        r, did = self.r, []
        if not r.get("cluster"):
            return did
        if r.get("rule"):
            with aws.aws_errors("deleting the listener rule"):
                if self._rule_exists(r["rule"]):
                    self.elbv2.delete_rule(RuleArn=r["rule"])
            did.append("listener rule")
        for colour in list(r.get("services", {})):
            self.scale_to_zero(colour)
            with aws.aws_errors(f"deleting service {r['services'][colour]}"):
                self.ecs.delete_service(cluster=r["cluster"], service=r["services"][colour], force=True)
            did.append(f"service {r['services'][colour]}")
        for colour, arn in r.get("target_groups", {}).items():
            with aws.aws_errors("deleting a target group"):
                self.elbv2.delete_target_group(TargetGroupArn=arn)
            did.append(f"target group {self.n['target_group'][colour]}")
        revs = self.revisions()
        for arn in revs:
            with aws.aws_errors("deregistering a task definition"):
                self.ecs.deregister_task_definition(taskDefinition=arn)
        if revs:
            did.append(f"{len(revs)} task definition revision(s)")
        if r.get("log_group") and not r.get("keep_log_group"):
            with aws.aws_errors("deleting the log group"):
                try:
                    self.logs.delete_log_group(logGroupName=r["log_group"])
                except self.logs.exceptions.ResourceNotFoundException:
                    pass
            did.append(f"log group {r['log_group']}")
        for role in r.get("roles", []):
            with aws.aws_errors(f"deleting IAM role {role}"):
                for p in self.iam.list_role_policies(RoleName=role)["PolicyNames"]:
                    self.iam.delete_role_policy(RoleName=role, PolicyName=p)
                for a in self.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
                    self.iam.detach_role_policy(RoleName=role, PolicyArn=a["PolicyArn"])
                self.iam.delete_role(RoleName=role)
            did.append(f"role {role}")
        return did
