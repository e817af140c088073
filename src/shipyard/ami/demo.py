"""`shipyard ami demo`: the whole pipeline on an in-process AWS stand-in, no account needed.

moto (in-process, `mock_aws`) plays EC2 and Auto Scaling; `ami/standin.py` plays the calls moto
lacks (instance refreshes, launch-template version deletion, DescribeImageReferences). Time is
virtual: a refresh polled every 15 s finishes at once.

The story: branch `main` has four baked images; the `web` template's v1 runs the oldest and the
`web-asg` group is pinned to v1. A dry-run prune shows what would go and why the rest stays; a
release rolls the newest image out (success, default v2, old versions and images pruned); a
fifth image is baked and its release fails and rolls back (exit code 4, v2 stays the default).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from shipyard import aws
from shipyard.ami.aws import AmiAws
from shipyard.ami.model import Outcome, ReleaseOptions
from shipyard.ami.report import print_prune, print_release, progress_printer
from shipyard.ami.runner import AmiRunner, Clock
from shipyard.ami.standin import StandIn
from shipyard.console import console
from shipyard.errors import ConfigError
from shipyard.settings import get_settings

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account


class VirtualClock(Clock):
    def __init__(self) -> None:
        self.t = datetime.now(timezone.utc)
        super().__init__(now=lambda: self.t, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def _bake(ec2: Any, branch: str, created: datetime) -> str:
    """An image as Packer leaves it: tagged with its branch and build time."""
    # moto: an optional dev dependency, imported only by the demo.
    from moto.ec2.models import ec2_backends

    image_id = ec2.register_image(Name=f"web-{branch}-{created:%Y%m%d%H%M}",
                                  RootDeviceName="/dev/xvda")["ImageId"]
    ec2.create_tags(Resources=[image_id], Tags=[
        {"Key": "branch", "Value": branch}, {"Key": "timestamp", "Value": str(int(created.timestamp()))}])
    ec2_backends[ACCOUNT][REGION].amis[image_id].creation_date = created  # the API cannot set it
    return image_id


def run_demo() -> int:
    try:
        # moto is an optional (dev) dependency; only the demo needs it.
        from moto import mock_aws
    except ImportError:
        raise ConfigError("the ami demo needs moto", hint="make install, or pip install 'shipyard[demo]'") from None
    with mock_aws():
        # Explicit AWS endpoints: mock_aws answers them even when AWS_ENDPOINT_URL points elsewhere.
        ec2 = aws.client("ec2", region=REGION, cache=False,
                         endpoint_url=f"https://ec2.{REGION}.amazonaws.com")
        asg = aws.client("autoscaling", region=REGION, cache=False,
                         endpoint_url=f"https://autoscaling.{REGION}.amazonaws.com")
        standin = StandIn(ec2, asg)
        return _story(ec2, asg, standin)


def _story(ec2: Any, asg: Any, standin: StandIn) -> int:
    now = datetime.now(timezone.utc)
    images = [_bake(ec2, "main", now - timedelta(hours=h)) for h in (4, 3, 2, 1)]
    _bake(ec2, "feature-x", now - timedelta(hours=5))
    lt = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": images[0], "InstanceType": "t3.micro", "Monitoring": {"Enabled": True}})
    tid = lt["LaunchTemplate"]["LaunchTemplateId"]
    asg.create_auto_scaling_group(AutoScalingGroupName="web-asg", MinSize=2, MaxSize=4,
                                  DesiredCapacity=2, AvailabilityZones=[f"{REGION}a"],
                                  LaunchTemplate={"LaunchTemplateId": tid, "Version": "1"})
    console.print(f"[bold]baked[/] 4 images of branch main ({', '.join(images)}) and one of "
                  "feature-x; template [bold]web[/] v1 runs the oldest; [bold]web-asg[/] runs v1")

    s = get_settings().ami
    runner = AmiRunner(AmiAws(ec2, asg), channel=s.channel, clock=VirtualClock(),
                       on_progress=progress_printer())
    console.rule("1. shipyard ami prune --branch main --keep 2 --dry-run")
    print_prune(runner.prune("main", 2, dry_run=True), as_json=False)

    opts = ReleaseOptions(branch="main", launch_template="web", asg="web-asg", keep_images=2,
                          keep_versions=2, timeout=1800, poll_interval=15)
    console.rule("2. shipyard ami release --branch main --launch-template web --asg web-asg --keep 2 --keep-versions 2")
    first = runner.release(opts)
    print_release(first, as_json=False)

    console.rule("3. a new image whose instances fail their health checks: the refresh rolls back")
    _bake(ec2, "main", now)
    standin.scripts.append("fail")
    second = runner.release(opts)
    print_release(second, as_json=False)
    default = ec2.describe_launch_templates(LaunchTemplateIds=[tid])["LaunchTemplates"][0]["DefaultVersionNumber"]
    console.print(f"web's default version is still v{default}; the release's exit code would be "
                  f"{second.outcome.exit_code}. Notices: {get_settings().outbox}")
    ok = first.outcome is Outcome.SUCCEEDED and second.outcome is Outcome.ROLLED_BACK and default == 2
    return 0 if ok else 1
