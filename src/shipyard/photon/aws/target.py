"""The AWS target: ECS Fargate services behind one ALB listener rule per service+env.

Orchestrated driver (the default): two services, blue and green, each with its own target
group behind the env's host-header rule. The runner's rollout loop shifts the rule's
ForwardConfig weights (0-999) step by step through `set_weights`, gated on target health
(`health`), the 5xx share of the new target group (`counters`, from CloudWatch's ALB metrics)
and the file's alarms; a rollback puts the weights back and scales the loser to zero.
The native driver (native.py) hands the rollout to ECS's own deployment strategies.

Every resource carries the tags shipyard:service / shipyard:env / shipyard:managed-by=photon
and is listed in the env's state (`resources`), which terminate walks. All calls go through
shipyard.aws (one client factory, errors mapped by code).
"""

from __future__ import annotations

from urllib import error, request
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from shipyard import aws
from shipyard.photon.aws import native, spec
from shipyard.photon.aws.resources import Resources
from shipyard.photon.model import Deployment
from shipyard.photon.state import Release
from shipyard.photon.targets.base import Ctx, Health
from shipyard.settings import PhotonSettings


class AwsTarget:
    name = "aws"

    def __init__(self, settings: PhotonSettings) -> None:
        self.settings = settings

    def prepare(self, dep: Deployment) -> dict[str, str]:
        """Only ssm:/secretsmanager: references (a task definition holds ARNs, never values)."""
        spec.secret_refs(dep)
        return spec.environment(dep)

    def _res(self, ctx: Ctx) -> Resources:
        return Resources(ctx)

    # ---- endpoint ---------------------------------------------------------------------------
    def ensure_endpoint(self, ctx: Ctx) -> str:
        res = self._res(ctx)
        res.ensure_base()
        ctx.state.endpoint = res.endpoint()
        ctx.dir.save(ctx.state)
        return ctx.state.endpoint

    # ---- releases ---------------------------------------------------------------------------
    # ---- native driver: ECS runs the rollout ----------------------------------------------------
    def drives_rollout(self, dep: Deployment) -> bool:
        return dep.deploy.driver == "native"

    def run_rollout(self, ctx: Ctx, release: Release, *, tick: float, sleep: Any, take_request: Any,
                    progress: Any) -> tuple[bool, str]:
        """Start the env's service deployment and follow it to ECS's own verdict."""
        res = self._res(ctx)
        dep = ctx.dep
        assert dep is not None
        release.slot, release.address = "native", res.n["native_service"]
        release.extra["started"] = datetime.now(timezone.utc).isoformat()
        release.extra["task_definition"] = res.register_task_definition(keep_in_use=self._in_use(ctx))
        ctx.dir.save(ctx.state)
        native.start(res, release.extra["task_definition"])
        ctx.dir.save(ctx.state)
        s = dep.deploy.strategy
        bakes = dep.deploy.bake + getattr(s, "bake", 0) + getattr(s, "step_bake", 0) * 100 / getattr(s, "step_percent", 100)
        return native.watch(res, timeout=dep.container.health.start_timeout + bakes + 1800, tick=tick, sleep=sleep,
                            take_request=take_request, progress=progress)

    def start(self, ctx: Ctx, release: Release, environment: dict[str, str]) -> None:
        res = self._res(ctx)
        used = {r.slot for r in ctx.state.releases.values() if r.status in ("live", "held") and r.slot}
        release.slot = next(c for c in spec.COLOURS if c not in used)
        release.address = res.r["target_groups"][release.slot]
        release.extra["started"] = datetime.now(timezone.utc).isoformat()
        release.extra["task_definition"] = res.register_task_definition(keep_in_use=self._in_use(ctx))
        ctx.dir.save(ctx.state)
        res.put_service(release.slot, release.extra["task_definition"])
        ctx.dir.save(ctx.state)

    def _in_use(self, ctx: Ctx) -> set[str]:
        return {r.extra.get("task_definition", "") for r in ctx.state.releases.values()
                if r.status in ("live", "starting", "held")}

    def health(self, ctx: Ctx, release: Release) -> Health:
        res = self._res(ctx)
        svc = res.describe_service(release.slot)
        if svc is None:
            return Health(False, f"service {res.n['service'][release.slot]} is gone", fatal=True)
        primary = next((d for d in svc.get("deployments", []) if d.get("status") == "PRIMARY"), {})
        if primary.get("rolloutState") == "FAILED":
            return Health(False, f"ECS deployment failed: {primary.get('rolloutStateReason', '')}", fatal=True)
        desired = int(res.r.get("desired", 1))
        with aws.aws_errors("reading target health"):
            states = [t["TargetHealth"]["State"] for t in
                      res.elbv2.describe_target_health(TargetGroupArn=release.address)["TargetHealthDescriptions"]]
        healthy = states.count("healthy")
        if healthy >= desired:
            return Health(True)
        others = ", ".join(sorted(s for s in states if s != "healthy"))
        return Health(False, f"{healthy}/{desired} targets healthy" + (f" ({others})" if others else ""))

    def smoke(self, ctx: Ctx, release: Release, path: str) -> int:
        # No test listener here: the smoke request goes to the endpoint (the new release has no
        # traffic share yet, so this checks that the endpoint answers). See docs/photon.md.
        try:
            with request.urlopen(f"{ctx.state.endpoint}{path}", timeout=10) as resp:  # noqa: S310 - our own endpoint
                return int(resp.status)
        except error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    def set_weights(self, ctx: Ctx, weights: dict[str, int]) -> None:
        by_colour = {ctx.state.releases[rid].slot: pct for rid, pct in weights.items()}
        if "native" in by_colour:
            return  # ECS moves the rule itself under the native driver
        res = self._res(ctx)
        res.forward({c: spec.weights(by_colour.get(c, 0))[0] for c in spec.COLOURS})

    def counters(self, ctx: Ctx, release: Release) -> tuple[int, int]:
        res = self._res(ctx)
        since = datetime.fromisoformat(release.extra["started"]) - timedelta(minutes=1)
        return (res.metric_sum("RequestCount", release.address, since),
                res.metric_sum("HTTPCode_Target_5XX_Count", release.address, since))

    def alarms(self, ctx: Ctx) -> list[str]:
        names = ctx.dep.deploy.gates.alarms if ctx.dep else ctx.state.resources.get("alarms", [])
        if not names:
            return []
        res = self._res(ctx)
        with aws.aws_errors("reading CloudWatch alarms"):
            found = res.cloudwatch.describe_alarms(AlarmNames=list(names))
        return sorted(a["AlarmName"] for a in found.get("MetricAlarms", []) + found.get("CompositeAlarms", [])
                      if a.get("StateValue") == "ALARM")

    def retire(self, ctx: Ctx, release: Release) -> None:
        """Scale the loser to zero (its service stays, ready to be the next colour)."""
        if release.slot != "native":  # native: ECS retires the old revision itself
            self._res(ctx).scale_to_zero(release.slot)
        if release.status != "failed":
            release.status = "stopped"

    def log_records(self, ctx: Ctx, release: Release, *, follow: bool,
                    sleep: Callable[[float], None]) -> Iterator[dict[str, Any]]:
        """The env's CloudWatch Logs events since the release started (awslogs streams)."""
        res = self._res(ctx)
        start = int(datetime.fromisoformat(release.extra.get("started") or release.created).timestamp() * 1000)
        seen: set[str] = set()
        while True:
            events = aws.paginate(res.logs, "filter_log_events", "events", logGroupName=res.r["log_group"],
                                  startTime=start, what="reading the log group")
            for e in events:
                if e["eventId"] in seen:
                    continue
                seen.add(e["eventId"])
                start = max(start, e["timestamp"])
                yield {"time": datetime.fromtimestamp(e["timestamp"] / 1000, timezone.utc).isoformat(timespec="milliseconds"),
                       "release": release.id, "stream": e.get("logStreamName", ""), "message": e["message"]}
            if not follow:
                return
            sleep(2.0)

    # ---- whole env ----------------------------------------------------------------------------
    def reconcile(self, ctx: Ctx) -> list[str]:
        st, did = ctx.state, []
        if not st.resources.get("cluster"):
            return did
        res = self._res(ctx)
        active = {r.slot for r in st.releases.values() if r.status in ("live", "starting", "held")}
        for colour in spec.COLOURS:
            svc = res.describe_service(colour)
            if colour not in active and svc and svc.get("desiredCount", 0) > 0:
                res.scale_to_zero(colour)
                did.append(f"scaled the orphan {colour} service to zero")
        for rel in st.releases.values():
            if rel.status in ("live", "held") and res.describe_service(rel.slot) is None:
                rel.extra["down"] = True
                did.append(f"release {rel.id}'s service is gone")
        return did

    def terminate(self, ctx: Ctx) -> list[str]:
        return self._res(ctx).delete_all()

