"""Releases on moto's server + the stand-in's scripted instance refreshes: one that succeeds,
one that fails and rolls back, one that times out (time injected), and version pruning that
never touches the default."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shipyard.ami.model import Outcome, ReleaseOptions
from shipyard.errors import InputError, ShipyardError
from tests.ami.conftest import T0


def at(minutes: int):
    return T0 + timedelta(minutes=minutes)


def opts(env, **kw) -> ReleaseOptions:
    base = dict(branch=env.branch, launch_template=env.name("lt"), asg=env.name("asg"),
                keep_images=2, keep_versions=2, timeout=1800, poll_interval=15)
    return ReleaseOptions(**{**base, **kw})


def setup_release(env, images: int = 4, **data):
    """Images 0..n-1 (the last newest); the template's v1 runs image 0 with a key, monitoring
    and tags; the group is pinned to v1."""
    ids = [env.bake(at(n)) for n in range(images)]
    lt = env.template(ids[0], KeyName="deploy", Monitoring={"Enabled": True},
                      TagSpecifications=[{"ResourceType": "instance",
                                          "Tags": [{"Key": "app", "Value": "web"}]}], **data)
    group = env.group(lt, "1")
    return ids, lt, group


def test_a_release_that_succeeds(ami_env):
    env = ami_env
    ids, lt, group = setup_release(env)
    seen = []
    runner = env.runner()
    runner.on_progress = seen.append

    result = runner.release(opts(env, checkpoints=[50, 100], checkpoint_delay=30))

    assert result.outcome is Outcome.SUCCEEDED and result.version == 2
    # The new version is v1's data with only the image changed (moto's SourceVersion copies
    # nothing: the runner copied it).
    v2 = env.ec2.describe_launch_template_versions(LaunchTemplateId=lt, Versions=["2"])
    data = v2["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["ImageId"] == ids[-1]
    assert data["KeyName"] == "deploy" and data["Monitoring"] == {"Enabled": True}
    assert data["TagSpecifications"][0]["Tags"] == [{"Key": "app", "Value": "web"}]
    # The refresh named the NUMBERED version, with AutoRollback and the preferences.
    start = [p for op, p in env.standin.calls if op == "StartInstanceRefresh"][0]
    assert start["DesiredConfiguration"] == {"LaunchTemplate": {"LaunchTemplateId": lt, "Version": "2"}}
    assert start["Preferences"] == {"MinHealthyPercentage": 90, "InstanceWarmup": 60,
                                    "SkipMatching": True, "AutoRollback": True,
                                    "CheckpointPercentages": [50, 100], "CheckpointDelay": 30}
    # Polled THAT refresh by id, with progress.
    polls = [p for op, p in env.standin.calls if op == "DescribeInstanceRefreshes"
             and p.get("InstanceRefreshIds")]
    assert polls and all(p["InstanceRefreshIds"] == [result.refresh_id] for p in polls)
    assert [s.status for s in seen] == ["Pending", "InProgress", "InProgress", "Successful"]
    assert seen[1].percent == 25 and seen[1].instances_to_update is not None
    # Default is now v2; the group runs v2's image.
    tmpl = env.ec2.describe_launch_templates(LaunchTemplateIds=[lt])["LaunchTemplates"][0]
    assert tmpl["DefaultVersionNumber"] == 2
    g = env.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    assert g["LaunchTemplate"]["Version"] == "2"
    # Versions pruned (v1, v2 are the newest 2), then images: image 0 stays for v1 (its old
    # instances were replaced), image 1 goes.
    assert result.versions is not None and result.versions.delete == []
    assert result.prune.deregistered == [ids[1]]
    why = {d.image.image_id: d.reasons for d in result.prune.plan.images}
    assert why[ids[0]] == [f"launch template lt-{env.branch} v1"]
    titles = [n.title for n in env.notes.notices]
    assert titles == [f"launch template version created: {env.branch}",
                      f"instance refresh started: {group}",
                      f"released: {env.branch} -> {group}",
                      f"launch template versions pruned: lt-{env.branch}",
                      f"images pruned: {env.branch}"]
    assert env.clock.slept == 3 * 15  # no real waiting

    again = env.runner().release(opts(env))
    assert again.outcome is Outcome.UNCHANGED


def test_a_release_that_fails_rolls_back(ami_env):
    env = ami_env
    # UserData here, not in the success test: moto cannot launch an ASG instance from a
    # version whose UserData came through CreateLaunchTemplateVersion (its assertion).
    ids, lt, group = setup_release(env, UserData="ZWNobyBoaQ==")
    env.standin.scripts.append("fail")

    result = env.runner().release(opts(env))

    assert result.outcome is Outcome.ROLLED_BACK and result.outcome.exit_code == 4
    assert "health checks" in result.message
    v2 = env.ec2.describe_launch_template_versions(LaunchTemplateId=lt, Versions=["2"])
    assert v2["LaunchTemplateVersions"][0]["LaunchTemplateData"]["UserData"] == "ZWNobyBoaQ=="
    tmpl = env.ec2.describe_launch_templates(LaunchTemplateIds=[lt])["LaunchTemplates"][0]
    assert tmpl["DefaultVersionNumber"] == 1  # the default stays
    g = env.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    assert g["LaunchTemplate"]["Version"] == "1"
    assert all(env.image_exists(i) for i in ids)  # nothing pruned after a failure
    assert not [op for op, _ in env.standin.calls if op == "DeleteLaunchTemplateVersions"]
    last = env.notes.notices[-1]
    assert last.level == "failure" and "rolled-back" in last.title and "stays on v1" in last.message


@pytest.mark.parametrize("on_timeout,called,final", [("rollback", "RollbackInstanceRefresh", "RollbackSuccessful"),
                                                     ("cancel", "CancelInstanceRefresh", "Cancelled")])
def test_a_release_that_times_out_is_rolled_back_or_cancelled(ami_env, on_timeout, called, final):
    env = ami_env
    ids, lt, group = setup_release(env)
    env.standin.scripts.append("stuck")
    seen = []
    runner = env.runner()
    runner.on_progress = seen.append

    result = runner.release(opts(env, timeout=1800, on_timeout=on_timeout, poll_interval=60))

    assert result.outcome is Outcome.TIMED_OUT and result.outcome.exit_code == 7
    assert [op for op, _ in env.standin.calls if op.endswith("InstanceRefresh")
            and op != "StartInstanceRefresh"] == [called]
    assert seen[-1].status == final
    assert 1800 <= env.clock.slept <= 1800 + 3 * 60  # simulated; the test took no such time
    tmpl = env.ec2.describe_launch_templates(LaunchTemplateIds=[lt])["LaunchTemplates"][0]
    assert tmpl["DefaultVersionNumber"] == 1
    assert any(n.level == "warning" and "timed out" in n.title for n in env.notes.notices)


def test_version_pruning_never_touches_the_default_or_a_version_in_use(ami_env):
    env = ami_env
    ids, lt, group = setup_release(env, images=3)
    for _ in range(6):  # v2..v7, all on image 1
        env.version(lt, ids[1])
    env.ec2.modify_launch_template(LaunchTemplateId=lt, DefaultVersion="3")
    other = env.name("asg2")
    env.asg.create_auto_scaling_group(
        AutoScalingGroupName=other, MinSize=0, MaxSize=1, DesiredCapacity=0,
        LaunchTemplate={"LaunchTemplateId": lt, "Version": "4"}, AvailabilityZones=["us-east-1a"])
    env.standin.scripts.append("stuck")  # a refresh of the other group to v5, in flight
    rid = env.asg.start_instance_refresh(
        AutoScalingGroupName=other, Preferences={"AutoRollback": True},
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": lt, "Version": "5"}})["InstanceRefreshId"]

    plan, refused = env.runner().prune_versions(lt, 2)

    assert refused == []
    assert plan.delete == [2]
    assert plan.keep_versions[1][0] == f"ASG {group}"
    # (moto reports each ASG instance on the template's default version, so they count for v3)
    assert plan.keep_versions[3][0] == "default version"
    assert plan.keep_versions[4] == [f"ASG {other}"]
    assert plan.keep_versions[5] == [f"refresh {rid} (Pending)"]
    assert plan.keep_versions[7] == ["newest 2 (#1)"]
    left = [v["VersionNumber"] for v in env.ec2.describe_launch_template_versions(
        LaunchTemplateId=lt)["LaunchTemplateVersions"]]
    assert left == [1, 3, 4, 5, 6, 7]
    deletes = [p for op, p in env.standin.calls if op == "DeleteLaunchTemplateVersions"]
    assert deletes == [{"LaunchTemplateId": lt, "Versions": ["2"]}]
    # The stand-in refuses the default as AWS does; the plan never asked.
    refused = env.runner().aws.delete_versions(lt, [3])
    assert refused == [(3, "launchTemplateVersionIsDefault")]


def test_a_group_on_latest_or_with_a_refresh_running_is_refused_before_anything_changes(ami_env):
    env = ami_env
    ids, lt, group = setup_release(env)
    env.asg.update_auto_scaling_group(AutoScalingGroupName=group,
                                      LaunchTemplate={"LaunchTemplateId": lt, "Version": "$Latest"})
    with pytest.raises(InputError, match="cannot roll back") as exc:
        env.runner().release(opts(env))
    assert "Version=1" in exc.value.hint
    env.asg.update_auto_scaling_group(AutoScalingGroupName=group,
                                      LaunchTemplate={"LaunchTemplateId": lt, "Version": "1"})
    env.standin.scripts.append("stuck")
    env.asg.start_instance_refresh(AutoScalingGroupName=group, Preferences={})
    with pytest.raises(ShipyardError, match="still"):
        env.runner().release(opts(env))
    versions = env.ec2.describe_launch_template_versions(LaunchTemplateId=lt)["LaunchTemplateVersions"]
    assert [v["VersionNumber"] for v in versions] == [1]  # no version was made


def test_unknown_names_get_did_you_mean(ami_env):
    env = ami_env
    setup_release(env)
    with pytest.raises(ShipyardError, match="not found") as exc:
        env.runner().release(opts(env, launch_template=env.name("lt") + "x"))
    assert exc.value.hint == f"did you mean {env.name('lt')!r}?"
    with pytest.raises(ShipyardError, match="not found") as exc:
        env.runner().release(opts(env, asg=env.name("asg")[:-1]))
    assert "did you mean" in exc.value.hint


def test_a_throttled_poll_is_retried_and_a_mixed_instances_group_is_refused(ami_env):
    env = ami_env
    ids, lt, group = setup_release(env)
    # The preflight's call passes; the first two polls are throttled.
    env.standin.faults["DescribeInstanceRefreshes"] = ["", "Throttling", "Throttling"]
    result = env.runner().release(opts(env))
    assert result.outcome is Outcome.SUCCEEDED
    polls = [p for op, p in env.standin.calls if op == "DescribeInstanceRefreshes"
             and p.get("InstanceRefreshIds")]
    assert len(polls) == 2 + 4  # 2 throttled + the 4 scripted steps

    mixed = env.name("mixed")
    env.asg.create_auto_scaling_group(
        AutoScalingGroupName=mixed, MinSize=0, MaxSize=1, DesiredCapacity=0,
        AvailabilityZones=["us-east-1a"], MixedInstancesPolicy={"LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": lt, "Version": "1"},
            "Overrides": [{"InstanceType": "t3.micro"}]}})
    env.bake(at(30))
    with pytest.raises(InputError, match="mixed instances policy"):
        env.runner().release(opts(env, asg=mixed))


def test_an_interrupted_release_says_which_refresh_goes_on(ami_env):
    env = ami_env
    setup_release(env)
    env.standin.scripts.append("stuck")
    runner = env.runner()

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    runner.clock.sleep = interrupt
    with pytest.raises(KeyboardInterrupt):
        runner.release(opts(env))
    last = env.notes.notices[-1]
    rid = last.fields["refresh_id"]
    assert last.level == "warning" and f"--instance-refresh-ids {rid}" in last.message
    assert env.standin.refreshes[rid].status == "Pending"  # left running, not cancelled
