"""An in-process stand-in for the AWS calls moto lacks, plugged into boto3 clients through
botocore's event hooks. `shipyard ami demo` runs on moto plus this; the tests use it on top of
moto's server. It never runs against AWS (docs/ami.md lists what it stands in for).

- Auto Scaling: StartInstanceRefresh, DescribeInstanceRefreshes, CancelInstanceRefresh,
  RollbackInstanceRefresh. Each refresh follows a script of (status, percent) steps, one step per
  DescribeInstanceRefreshes; a rollback or cancel switches it to its own script. Reaching
  Successful applies the desired configuration to the group and replaces its instances (through
  moto's own calls), as a real refresh ends.
- EC2: DeleteLaunchTemplateVersions (remembered; hidden from DescribeLaunchTemplateVersions;
  the default version is refused as AWS does), DescribeImageReferences (instances and launch
  template versions, computed from moto), EnableImageDeregistrationProtection (shown in
  DescribeImages; DeregisterImage refused), and optional DescribeImages paging (moto returns
  every image in one page; `image_page_size` makes it page like AWS).

How a hook answers: a `before-call.<service>.<Operation>` handler that returns
(http_response, parsed) short-circuits the HTTP call. The call's own parameters are kept by a
`before-parameter-build` handler in the request context.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

Step = tuple[str, int]
SCRIPTS: dict[str, list[Step]] = {
    "success": [("Pending", 0), ("InProgress", 25), ("InProgress", 60), ("Successful", 100)],
    # With AutoRollback a failed refresh rolls itself back.
    "fail": [("Pending", 0), ("InProgress", 40), ("RollbackInProgress", 40),
             ("RollbackSuccessful", 0)],
    "fail-no-rollback": [("Pending", 0), ("InProgress", 40), ("Failed", 40)],
    "rollback-fails": [("Pending", 0), ("InProgress", 40), ("RollbackInProgress", 40),
                       ("RollbackFailed", 40)],
    "stuck": [("Pending", 0), ("InProgress", 10)],  # the last step repeats forever
}
ON_ROLLBACK: list[Step] = [("RollbackInProgress", 0), ("RollbackSuccessful", 0)]
ON_CANCEL: list[Step] = [("Cancelling", 0), ("Cancelled", 0)]
TERMINAL = {"Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"}


class _Http:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.headers: dict[str, str] = {}
        self.content = b""
        self.text = ""


def _ok(body: dict[str, Any]) -> tuple[_Http, dict[str, Any]]:
    return _Http(200), {**body, "ResponseMetadata": {"HTTPStatusCode": 200}}


def _error(code: str, message: str, status: int = 400) -> tuple[_Http, dict[str, Any]]:
    return _Http(status), {"Error": {"Code": code, "Message": message},
                           "ResponseMetadata": {"HTTPStatusCode": status}}


@dataclass
class Refresh:
    refresh_id: str
    group: str
    desired: dict[str, Any]
    preferences: dict[str, Any]
    steps: list[Step]
    position: int = 0
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    applied: bool = False
    polled: bool = False

    @property
    def status(self) -> str:
        return self.steps[min(self.position, len(self.steps) - 1)][0]

    def view(self, instances: int) -> dict[str, Any]:
        status, percent = self.steps[min(self.position, len(self.steps) - 1)]
        out = {"InstanceRefreshId": self.refresh_id, "AutoScalingGroupName": self.group,
               "Status": status, "PercentageComplete": percent, "StartTime": self.started,
               "InstancesToUpdate": max(0, round(instances * (100 - percent) / 100)),
               "Preferences": self.preferences, "DesiredConfiguration": self.desired,
               "Strategy": "Rolling"}
        if status.startswith("Rollback") or status == "Failed":
            out["StatusReason"] = "instances failed health checks (scripted by the stand-in)"
        return out


class StandIn:
    """Install on an EC2 and an Auto Scaling client; `uninstall()` takes the hooks off."""

    def __init__(self, ec2: Any, autoscaling: Any, *, script: str = "success",
                 image_page_size: int | None = None) -> None:
        self.ec2, self.asg = ec2, autoscaling
        self.default_script = script
        self.scripts: list[str] = []  # per StartInstanceRefresh, first come first served
        self.refreshes: dict[str, Refresh] = {}
        self.deleted_versions: dict[str, set[int]] = {}
        self.protected: set[str] = set()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # op -> error codes its next calls answer with (e.g. {"DescribeInstanceRefreshes":
        # ["", "Throttling"]}: "" lets that call through); only the operations it handles.
        self.faults: dict[str, list[str]] = {}
        self.image_page_size = image_page_size
        self._pages: dict[str, list[dict[str, Any]]] = {}
        self._inside = threading.local()
        self._hooks: list[tuple[Any, str, Callable[..., Any]]] = []
        self._install()

    # ---- plumbing -----------------------------------------------------------------------

    def _on(self, client: Any, event: str, handler: Callable[..., Any]) -> None:
        client.meta.events.register(event, handler)
        self._hooks.append((client, event, handler))

    def _install(self) -> None:
        def keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["standin_params"] = dict(params)

        ec2_ops = {"DeleteLaunchTemplateVersions": self._delete_versions,
                   "DescribeImageReferences": self._image_references,
                   "EnableImageDeregistrationProtection": self._protect,
                   "DeregisterImage": self._deregister,
                   "DescribeImages": self._page_images}
        asg_ops = {"StartInstanceRefresh": self._start, "DescribeInstanceRefreshes": self._describe,
                   "CancelInstanceRefresh": self._cancel, "RollbackInstanceRefresh": self._rollback}
        for client, service, ops in ((self.ec2, "ec2", ec2_ops), (self.asg, "auto-scaling", asg_ops)):
            self._on(client, f"before-parameter-build.{service}", keep_params)
            for op, fn in ops.items():
                self._on(client, f"before-call.{service}.{op}", self._wrap(op, fn))
        self._on(self.ec2, "after-call.ec2.DescribeLaunchTemplateVersions", self._hide_deleted)
        self._on(self.ec2, "after-call.ec2.DescribeImages", self._show_protection)

    def _wrap(self, op: str, fn: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
        def handler(context: dict[str, Any], **_: Any) -> Any:
            if getattr(self._inside, "on", False):
                return None  # our own call to moto: let it through
            params = context.get("standin_params", {})
            self.calls.append((op, params))
            code = self.faults[op].pop(0) if self.faults.get(op) else ""
            if code:
                return _error(code, "injected by the stand-in")
            return fn(params)
        return handler

    def _through(self, call: Callable[..., Any], **params: Any) -> Any:
        """Call moto itself from inside a hook."""
        self._inside.on = True
        try:
            return call(**params)
        finally:
            self._inside.on = False

    def uninstall(self) -> None:
        for client, event, handler in self._hooks:
            client.meta.events.unregister(event, handler)
        self._hooks.clear()

    # ---- EC2 ----------------------------------------------------------------------------

    def _template(self, params: dict[str, Any]) -> dict[str, Any] | None:
        key = {"LaunchTemplateIds": [params["LaunchTemplateId"]]} if params.get("LaunchTemplateId") \
            else {"LaunchTemplateNames": [params.get("LaunchTemplateName", "")]}
        try:
            return self.ec2.describe_launch_templates(**key)["LaunchTemplates"][0]
        except Exception:
            return None

    def _delete_versions(self, params: dict[str, Any]) -> Any:
        template = self._template(params)
        if template is None:
            return _error("InvalidLaunchTemplateId.NotFound", "no such launch template")
        tid = template["LaunchTemplateId"]
        gone = self.deleted_versions.setdefault(tid, set())
        ok, refused = [], []
        for raw in params.get("Versions", []):
            v = int(raw)
            if v == int(template["DefaultVersionNumber"]):
                refused.append((v, "launchTemplateVersionIsDefault",
                                "the default version cannot be deleted"))
            elif v in gone or v > int(template["LatestVersionNumber"]) or v < 1:
                refused.append((v, "launchTemplateVersionDoesNotExist", "no such version"))
            else:
                gone.add(v)
                ok.append(v)
        return _ok({
            "SuccessfullyDeletedLaunchTemplateVersions": [
                {"LaunchTemplateId": tid, "LaunchTemplateName": template["LaunchTemplateName"],
                 "VersionNumber": v} for v in ok],
            "UnsuccessfullyDeletedLaunchTemplateVersions": [
                {"LaunchTemplateId": tid, "LaunchTemplateName": template["LaunchTemplateName"],
                 "VersionNumber": v, "ResponseError": {"Code": c, "Message": m}}
                for v, c, m in refused]})

    def _hide_deleted(self, parsed: dict[str, Any], **_: Any) -> None:
        versions = parsed.get("LaunchTemplateVersions")
        if versions:
            versions[:] = [v for v in versions if v["VersionNumber"] not in
                           self.deleted_versions.get(v["LaunchTemplateId"], set())]

    def _image_references(self, params: dict[str, Any]) -> Any:
        wanted = set(params.get("ImageIds", []))
        region = self.ec2.meta.region_name
        refs = []
        pages = self.ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "image-id", "Values": sorted(wanted)}])
        for page in pages:
            for res in page["Reservations"]:
                for inst in res["Instances"]:
                    if inst["State"]["Name"] != "terminated":
                        refs.append({"ImageId": inst["ImageId"], "ResourceType": "ec2:Instance",
                                     "Arn": f"arn:aws:ec2:{region}:123456789012:instance/{inst['InstanceId']}"})
        for page in self.ec2.get_paginator("describe_launch_templates").paginate():
            for lt in page["LaunchTemplates"]:
                versions = self.ec2.describe_launch_template_versions(
                    LaunchTemplateId=lt["LaunchTemplateId"], MaxResults=200)["LaunchTemplateVersions"]
                if any(v["LaunchTemplateData"].get("ImageId") in wanted for v in versions):
                    image = next(v["LaunchTemplateData"]["ImageId"] for v in versions
                                 if v["LaunchTemplateData"].get("ImageId") in wanted)
                    refs.append({"ImageId": image, "ResourceType": "ec2:LaunchTemplate",
                                 "Arn": f"arn:aws:ec2:{region}:123456789012:launch-template/{lt['LaunchTemplateId']}"})
        return _ok({"ImageReferences": refs})

    def _protect(self, params: dict[str, Any]) -> Any:
        self.protected.add(params["ImageId"])
        return _ok({"Return": "enabled"})

    def _show_protection(self, parsed: dict[str, Any], **_: Any) -> None:
        for image in parsed.get("Images", []):
            image["DeregistrationProtection"] = ("enabled" if image["ImageId"] in self.protected
                                                 else "disabled")

    def _deregister(self, params: dict[str, Any]) -> Any:
        if params.get("ImageId") in self.protected:
            # The stand-in's own code: the real one was not checked against AWS.
            return _error("OperationNotPermitted", "deregistration protection is enabled")
        return None  # moto does it

    def _page_images(self, params: dict[str, Any]) -> Any:
        if not self.image_page_size:
            return None
        token = params.pop("NextToken", None)
        params.pop("MaxResults", None)
        if token is None:
            token = uuid.uuid4().hex
            self._pages[token] = self._through(self.ec2.describe_images, **params)["Images"]
        items = self._pages.pop(token, [])
        page, rest = items[:self.image_page_size], items[self.image_page_size:]
        body: dict[str, Any] = {"Images": page}
        if rest:
            nxt = uuid.uuid4().hex
            self._pages[nxt] = rest
            body["NextToken"] = nxt
        self._show_protection(body)
        return _ok(body)

    # ---- Auto Scaling -------------------------------------------------------------------

    def _group(self, name: str) -> dict[str, Any] | None:
        found = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        return found[0] if found else None

    def _active(self, group: str) -> Refresh | None:
        return next((r for r in self.refreshes.values()
                     if r.group == group and r.status not in TERMINAL), None)

    def _start(self, params: dict[str, Any]) -> Any:
        name = params["AutoScalingGroupName"]
        if self._group(name) is None:
            return _error("ValidationError", f"AutoScalingGroup name not found - {name}")
        if self._active(name):
            return _error("InstanceRefreshInProgress", "an instance refresh is already in progress")
        desired = params.get("DesiredConfiguration", {})
        prefs = params.get("Preferences", {})
        version = str(desired.get("LaunchTemplate", {}).get("Version", ""))
        if prefs.get("AutoRollback") and not version.isdigit():
            return _error("ValidationError", "AutoRollback needs a desired configuration with a "
                          "numbered launch template version")
        script = self.scripts.pop(0) if self.scripts else self.default_script
        rid = str(uuid.uuid4())
        self.refreshes[rid] = Refresh(rid, name, desired, prefs, list(SCRIPTS[script]))
        return _ok({"InstanceRefreshId": rid})

    def _describe(self, params: dict[str, Any]) -> Any:
        name = params["AutoScalingGroupName"]
        group = self._group(name)
        ids = params.get("InstanceRefreshIds") or []
        out = []
        # Newest first, as AWS lists them.
        for r in sorted(self.refreshes.values(), key=lambda r: r.started, reverse=True):
            if r.group != name or (ids and r.refresh_id not in ids):
                continue
            if ids:  # each poll of this refresh after the first moves it one step on
                if r.polled:
                    r.position = min(r.position + 1, len(r.steps) - 1)
                r.polled = True
            if r.status == "Successful" and not r.applied:
                self._apply(r)
            out.append(r.view(len((group or {}).get("Instances", []))))
        return _ok({"InstanceRefreshes": out})

    def _apply(self, r: Refresh) -> None:
        """What a finished refresh leaves behind: the group on the desired configuration,
        every instance launched from it."""
        r.applied = True
        group = self._group(r.group)
        assert group is not None
        spec = r.desired.get("LaunchTemplate")
        size = {"MinSize": group["MinSize"], "DesiredCapacity": group["DesiredCapacity"]}
        self.asg.update_auto_scaling_group(AutoScalingGroupName=r.group, LaunchTemplate=spec,
                                           MinSize=0, DesiredCapacity=0)
        self.asg.update_auto_scaling_group(AutoScalingGroupName=r.group, **size)

    def _stop(self, params: dict[str, Any], steps: list[Step], irreversible: bool) -> Any:
        active = self._active(params["AutoScalingGroupName"])
        if active is None:
            return _error("ActiveInstanceRefreshNotFound", "no active instance refresh")
        if irreversible and active.status.startswith("Rollback"):
            return _error("IrreversibleInstanceRefresh", "the refresh is already rolling back")
        active.steps = active.steps[:active.position + 1] + steps
        return _ok({"InstanceRefreshId": active.refresh_id})

    def _cancel(self, params: dict[str, Any]) -> Any:
        return self._stop(params, ON_CANCEL, irreversible=False)

    def _rollback(self, params: dict[str, Any]) -> Any:
        return self._stop(params, ON_ROLLBACK, irreversible=True)

