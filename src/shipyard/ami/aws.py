"""The AMI pipeline's AWS adapter: EC2 and Auto Scaling calls, every list paginated.

All clients come from `shipyard.aws`; every botocore error leaves as a mapped ShipyardError.
Only this module talks to AWS; the decisions (`ami/plan.py`) get plain data from it.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Iterator

from shipyard import aws
from shipyard.ami.model import TERMINAL_STATES, Image, RefreshStatus, utc
from shipyard.errors import NotFoundError, ShipyardError, did_you_mean

# States in which an instance still needs (or may need again) its image.
LIVE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]
# DescribeImageReferences checks only this many newest versions of each launch template unless
# told otherwise; ask for the most it allows (our own scan below covers every version anyway).
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-ami-references.html
VERSION_DEPTH = "10000"
# Codes that mean "this endpoint does not have the call": fall back to our own scan.
_NO_SUCH_CALL = frozenset({"InvalidAction", "UnsupportedOperation", "NotImplemented",
                           "UnknownOperationException"})
_CHUNK = 200
# lt- and 17 hex digits; anything else is a name (names may start with "lt-" too).
TEMPLATE_ID = re.compile(r"^lt-[0-9a-f]{17}$")  # filter values / ids per request


def _chunks(items: list[str], size: int = _CHUNK) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def to_image(raw: dict[str, Any]) -> Image:
    snaps = tuple(m["Ebs"]["SnapshotId"] for m in raw.get("BlockDeviceMappings", [])
                  if m.get("Ebs", {}).get("SnapshotId"))
    protection = str(raw.get("DeregistrationProtection") or "disabled")
    return Image(image_id=raw["ImageId"], created=utc(raw["CreationDate"]),
                 name=raw.get("Name", ""), state=raw.get("State", "available"),
                 tags={t["Key"]: t["Value"] for t in raw.get("Tags", [])},
                 snapshots=snaps, protected=protection.startswith("enabled"))


class AmiAws:
    """EC2 + Auto Scaling for one region (and role)."""

    def __init__(self, ec2: Any, autoscaling: Any) -> None:
        self.ec2 = ec2
        self.asg = autoscaling
        self.notes: list[str] = []  # what could not be checked, said once in the output
        self.checked: list[str] = []  # what "in use" was checked against, for the output

    @classmethod
    def connect(cls, *, region: str | None = None, role_arn: str | None = None) -> "AmiAws":
        return cls(aws.client("ec2", region=region, role_arn=role_arn),
                   aws.client("autoscaling", region=region, role_arn=role_arn))

    # ---- images -------------------------------------------------------------------------

    def images(self) -> list[Image]:
        """Every image this account owns (all branches: a snapshot may be shared across them)."""
        return [to_image(i) for i in aws.paginate(self.ec2, "describe_images", "Images",
                                                  what="listing images", Owners=["self"])]

    def images_in_use(self, image_ids: Iterable[str]) -> dict[str, list[str]]:
        """image id -> what uses it: instances not terminated, any launch-template version,
        launch configurations, and DescribeImageReferences' hits (SSM parameters, Image
        Builder recipes) where the API has it."""
        ids = sorted(set(image_ids))
        used: dict[str, list[str]] = {}

        def add(image_id: str | None, why: str) -> None:
            if image_id in wanted and why not in used.setdefault(image_id, []):
                used[image_id].append(why)

        wanted = set(ids)
        instances: dict[tuple[str, str], list[str]] = {}
        for chunk in _chunks(ids):
            for res in aws.paginate(self.ec2, "describe_instances", "Reservations",
                                    what="listing instances",
                                    Filters=[{"Name": "image-id", "Values": chunk},
                                             {"Name": "instance-state-name", "Values": LIVE_STATES}]):
                for inst in res.get("Instances", []):
                    instances.setdefault((inst.get("ImageId"), inst["State"]["Name"]), []).append(
                        inst["InstanceId"])
        for (image_id, state), found in sorted(instances.items()):
            add(image_id, f"instance {found[0]} ({state})" if len(found) == 1
                else f"{len(found)} instances ({state}): {found[0]}, ...")
        for lt in aws.paginate(self.ec2, "describe_launch_templates", "LaunchTemplates",
                               what="listing launch templates"):
            for number, image_id in self.template_versions(lt["LaunchTemplateId"]):
                add(image_id, f"launch template {lt['LaunchTemplateName']} v{number}")
        for lc in aws.paginate(self.asg, "describe_launch_configurations", "LaunchConfigurations",
                               what="listing launch configurations"):
            add(lc.get("ImageId"), f"launch configuration {lc['LaunchConfigurationName']}")
        self.checked = ["instances (not terminated)", "every launch-template version",
                        "launch configurations"]
        scanned = set(used)
        for ref in self._image_references(ids):
            # Instances and templates were scanned above (every version, every live state);
            # a hit of those kinds only adds news for an image the scan found unused.
            kind = ref.get("ResourceType", "")
            if kind.startswith("ec2:") and ref.get("ImageId") in scanned:
                continue
            add(ref.get("ImageId"), f"{kind} {ref.get('Arn')}")
        return used

    def _image_references(self, ids: list[str]) -> Iterator[dict[str, Any]]:
        if "DescribeImageReferences" not in self.ec2.meta.service_model.operation_names:
            self.notes.append("this botocore has no DescribeImageReferences; "
                              "SSM parameters and Image Builder recipes were not checked")
            return
        if ids:
            self.checked.append("DescribeImageReferences (all resource types)")
        for chunk in _chunks(ids, 100):
            try:
                yield from aws.paginate(
                    self.ec2, "describe_image_references", "ImageReferences",
                    what="DescribeImageReferences", ImageIds=chunk, IncludeAllResourceTypes=True,
                    ResourceTypes=[{"ResourceType": "ec2:LaunchTemplate", "ResourceTypeOptions": [
                        {"OptionName": "version-depth", "OptionValues": [VERSION_DEPTH]}]}])
            except ShipyardError as exc:
                if exc.details.get("aws_code") not in _NO_SUCH_CALL:
                    raise
                self.notes.append("DescribeImageReferences is not available here; "
                                  "SSM parameters and Image Builder recipes were not checked")
                self.checked.pop()
                return

    def deregister(self, image_id: str) -> None:
        """Deregister; an image already gone (another prune got there first) counts as done."""
        try:
            with aws.aws_errors(f"deregistering {image_id}"):
                self.ec2.deregister_image(ImageId=image_id)
        except ShipyardError as exc:
            if exc.details.get("aws_code") not in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
                raise

    def delete_snapshot(self, snapshot_id: str) -> str | None:
        """Delete; None when done (or already gone), else the AWS code that kept it."""
        try:
            with aws.aws_errors(f"deleting snapshot {snapshot_id}"):
                self.ec2.delete_snapshot(SnapshotId=snapshot_id)
        except NotFoundError:
            return None
        except ShipyardError as exc:
            code = exc.details.get("aws_code")
            if code == "InvalidSnapshot.InUse":  # a new image took it since we looked
                return code
            raise
        return None

    # ---- launch templates ---------------------------------------------------------------

    def template(self, name_or_id: str) -> dict[str, Any]:
        """DescribeLaunchTemplates' entry for an lt-... id or a name (did-you-mean if absent)."""
        key = "LaunchTemplateIds" if TEMPLATE_ID.match(name_or_id) else "LaunchTemplateNames"
        try:
            with aws.aws_errors(f"finding launch template {name_or_id}"):
                found = self.ec2.describe_launch_templates(**{key: [name_or_id]})["LaunchTemplates"]
        except NotFoundError:  # InvalidLaunchTemplateName.NotFoundException and kin
            found = []
        if not found:
            names = [t["LaunchTemplateName"] for t in aws.paginate(
                self.ec2, "describe_launch_templates", "LaunchTemplates")]
            raise NotFoundError(f"launch template {name_or_id!r} not found",
                                hint=did_you_mean(name_or_id, names) or "check --launch-template "
                                "and the region")
        return found[0]

    def template_versions(self, template_id: str) -> list[tuple[int, str | None]]:
        """(version number, image id) of every version of a template."""
        return [(v["VersionNumber"], v.get("LaunchTemplateData", {}).get("ImageId"))
                for v in aws.paginate(self.ec2, "describe_launch_template_versions",
                                      "LaunchTemplateVersions", what=f"listing {template_id}'s versions",
                                      LaunchTemplateId=template_id,
                                      PaginationConfig={"PageSize": 200})]

    def version_data(self, template_id: str, version: str) -> dict[str, Any]:
        with aws.aws_errors(f"reading {template_id} version {version}"):
            got = self.ec2.describe_launch_template_versions(
                LaunchTemplateId=template_id, Versions=[version])["LaunchTemplateVersions"]
        return got[0]

    def request_data_keys(self) -> list[str]:
        """The members CreateLaunchTemplateVersion accepts in LaunchTemplateData."""
        return list(self.ec2.meta.service_model.shape_for("RequestLaunchTemplateData").members)

    def create_version(self, template_id: str, source_version: int, data: dict[str, Any],
                       description: str) -> int:
        # SourceVersion too: on AWS it carries any response-only key we could not copy.
        with aws.aws_errors(f"creating a version of {template_id}"):
            out = self.ec2.create_launch_template_version(
                LaunchTemplateId=template_id, SourceVersion=str(source_version),
                LaunchTemplateData=data, VersionDescription=description[:255])
        return int(out["LaunchTemplateVersion"]["VersionNumber"])

    def set_default(self, template_id: str, version: int) -> None:
        with aws.aws_errors(f"setting {template_id}'s default version"):
            self.ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(version))

    def delete_versions(self, template_id: str, versions: list[int]) -> list[tuple[int, str]]:
        """Delete versions (200 a call); returns (version, code) for each one AWS refused."""
        refused = []
        for chunk in _chunks([str(v) for v in versions]):
            with aws.aws_errors(f"deleting versions of {template_id}"):
                out = self.ec2.delete_launch_template_versions(LaunchTemplateId=template_id,
                                                               Versions=chunk)
            for item in out.get("UnsuccessfullyDeletedLaunchTemplateVersions", []):
                refused.append((int(item["VersionNumber"]),
                                item.get("ResponseError", {}).get("Code", "unknown")))
        return refused

    # ---- auto scaling groups ------------------------------------------------------------

    def group(self, name: str) -> dict[str, Any]:
        with aws.aws_errors(f"describing auto scaling group {name}"):
            found = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        if not found:
            names = [g["AutoScalingGroupName"] for g in aws.paginate(
                self.asg, "describe_auto_scaling_groups", "AutoScalingGroups")]
            raise NotFoundError(f"auto scaling group {name!r} not found",
                                hint=did_you_mean(name, names) or "check --asg and the region")
        return found[0]

    def versions_in_use(self, template: dict[str, Any]) -> dict[int, list[str]]:
        """version -> which ASG, ASG instance or unfinished refresh uses it ($Latest/$Default
        resolved to numbers)."""
        tid, tname = template["LaunchTemplateId"], template["LaunchTemplateName"]
        aliases = {"$Latest": int(template["LatestVersionNumber"]),
                   "$Default": int(template["DefaultVersionNumber"])}
        used: dict[int, list[str]] = {}

        def names_it(spec: dict[str, Any] | None) -> bool:
            return bool(spec) and (spec.get("LaunchTemplateId") == tid
                                   or spec.get("LaunchTemplateName") == tname)

        def add(spec: dict[str, Any] | None, why: str) -> None:
            if not names_it(spec):
                return
            assert spec is not None
            raw = str(spec.get("Version") or "$Default")
            number = aliases.get(raw) or (int(raw) if raw.isdigit() else None)
            if number is not None and why not in used.setdefault(number, []):
                used[number].append(why)

        for g in aws.paginate(self.asg, "describe_auto_scaling_groups", "AutoScalingGroups",
                              what="listing auto scaling groups"):
            name = g["AutoScalingGroupName"]
            mixed = g.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {})
            specs = [g.get("LaunchTemplate"), mixed.get("LaunchTemplateSpecification")]
            specs += [o.get("LaunchTemplateSpecification") for o in mixed.get("Overrides", [])]
            for spec in specs:
                add(spec, f"ASG {name}")
            for inst in g.get("Instances", []):
                add(inst.get("LaunchTemplate"), f"ASG {name} instances")
            # Every group, not only those on this template: a refresh in flight may be moving
            # a group onto it.
            for r in self.refreshes(name):
                if r.get("Status") not in TERMINAL_STATES:
                    add(r.get("DesiredConfiguration", {}).get("LaunchTemplate"),
                        f"refresh {r['InstanceRefreshId']} ({r.get('Status')})")
        return used

    def refreshes(self, group: str, refresh_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """DescribeInstanceRefreshes, every page (botocore has no paginator for it)."""
        params: dict[str, Any] = {"AutoScalingGroupName": group, "MaxRecords": 100}
        if refresh_ids:
            params["InstanceRefreshIds"] = refresh_ids
        out: list[dict[str, Any]] = []
        while True:
            with aws.aws_errors(f"describing instance refreshes of {group}"):
                page = self.asg.describe_instance_refreshes(**params)
            out.extend(page.get("InstanceRefreshes", []))
            if not page.get("NextToken"):
                return out
            params["NextToken"] = page["NextToken"]

    def start_refresh(self, group: str, desired: dict[str, Any], prefs: dict[str, Any]) -> str:
        with aws.aws_errors(f"starting an instance refresh of {group}"):
            return self.asg.start_instance_refresh(
                AutoScalingGroupName=group, Strategy="Rolling", DesiredConfiguration=desired,
                Preferences=prefs)["InstanceRefreshId"]

    def refresh(self, group: str, refresh_id: str) -> RefreshStatus:
        """That refresh, by id (never "the newest one")."""
        found = self.refreshes(group, [refresh_id])
        if not found:
            raise NotFoundError(f"instance refresh {refresh_id} of {group} not found")
        r = found[0]
        return RefreshStatus(refresh_id=r["InstanceRefreshId"], status=r["Status"],
                             percent=r.get("PercentageComplete"),
                             instances_to_update=r.get("InstancesToUpdate"),
                             reason=r.get("StatusReason", ""))

    def stop_refresh(self, group: str, how: str) -> None:
        """`rollback` or `cancel` the group's active refresh."""
        with aws.aws_errors(f"{how} of the instance refresh of {group}"):
            if how == "rollback":
                self.asg.rollback_instance_refresh(AutoScalingGroupName=group)
            else:
                self.asg.cancel_instance_refresh(AutoScalingGroupName=group)
