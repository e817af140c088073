"""AMI tests: moto's server over HTTP (the session `s3_server`), plus the stand-in for the calls
moto lacks (shipyard.ami.standin: instance refreshes, launch-template version deletion,
DescribeImageReferences, deregistration protection, DescribeImages paging) plugged into the
clients through botocore's event hooks.

moto's state lives as long as the server: every test uses its own branch and template names.
Test set-up reaches into moto's in-process backend only for what the EC2 API cannot set:
an image's CreationDate and an image sharing another's snapshot.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shipyard import aws
from shipyard.ami.aws import AmiAws
from shipyard.ami.runner import AmiRunner, Clock
from shipyard.ami.standin import StandIn
from shipyard.notify import MemoryNotifier

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def backend() -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[ACCOUNT][REGION]


class FakeClock(Clock):
    """Time that moves only when the runner sleeps: a 30-minute timeout takes no real time."""

    def __init__(self, start: datetime = T0) -> None:
        self.t = start
        self.slept = 0.0
        super().__init__(now=lambda: self.t, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.t += timedelta(seconds=seconds)


@dataclass
class Env:
    ec2: Any
    asg: Any
    standin: StandIn
    branch: str
    notes: MemoryNotifier = field(default_factory=MemoryNotifier)
    clock: FakeClock = field(default_factory=FakeClock)

    def name(self, what: str) -> str:
        return f"{what}-{self.branch}"  # lt-<branch> is a name, not an id

    def bake(self, created: datetime, branch: str | None = None, **tags: str) -> str:
        """An available image of `branch` (default: the test's) created at `created`."""
        image_id = self.ec2.register_image(Name=f"{self.branch}-{uuid.uuid4().hex[:6]}",
                                           RootDeviceName="/dev/xvda")["ImageId"]
        all_tags = {"branch": branch or self.branch,
                    "timestamp": str(int(created.timestamp())), **tags}
        self.ec2.create_tags(Resources=[image_id],
                             Tags=[{"Key": k, "Value": v} for k, v in all_tags.items()])
        backend().amis[image_id].creation_date = created
        return image_id

    def share_snapshot(self, owner: str, borrower: str) -> str:
        """Make `borrower` use `owner`'s snapshot (as a copy within a region can)."""
        amis = backend().amis
        amis[borrower].ebs_snapshot = amis[owner].ebs_snapshot
        return amis[owner].ebs_snapshot.id

    def snapshot_of(self, image_id: str) -> str:
        return backend().amis[image_id].ebs_snapshot.id

    def snapshot_exists(self, snapshot_id: str) -> bool:
        return snapshot_id in backend().snapshots

    def image_exists(self, image_id: str) -> bool:
        return bool(self.ec2.describe_images(Filters=[{"Name": "image-id", "Values": [image_id]}])["Images"])

    def template(self, image_id: str, **data: Any) -> str:
        out = self.ec2.create_launch_template(
            LaunchTemplateName=self.name("lt"),
            LaunchTemplateData={"ImageId": image_id, "InstanceType": "t3.micro", **data})
        return out["LaunchTemplate"]["LaunchTemplateId"]

    def version(self, template_id: str, image_id: str) -> int:
        out = self.ec2.create_launch_template_version(
            LaunchTemplateId=template_id, LaunchTemplateData={"ImageId": image_id,
                                                              "InstanceType": "t3.micro"})
        return out["LaunchTemplateVersion"]["VersionNumber"]

    def group(self, template_id: str, version: str = "1", size: int = 2) -> str:
        name = self.name("asg")
        self.asg.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=size, MaxSize=size + 2, DesiredCapacity=size,
            LaunchTemplate={"LaunchTemplateId": template_id, "Version": version},
            AvailabilityZones=[f"{REGION}a"])
        return name

    def runner(self) -> AmiRunner:
        return AmiRunner(AmiAws(self.ec2, self.asg), notifier=self.notes, clock=self.clock)


@pytest.fixture
def ami_env(s3_server):
    """Clients on moto's server with the stand-in installed. They are shared.aws's cached
    clients (made once: an EC2 client costs a second on a loaded machine), so the CLI's calls
    go through the stand-in as well."""
    ec2, asg = aws.client("ec2", region=REGION), aws.client("autoscaling", region=REGION)
    standin = StandIn(ec2, asg)
    yield Env(ec2, asg, standin, branch=f"b{uuid.uuid4().hex[:8]}")
    standin.uninstall()
