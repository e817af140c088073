"""Image retention on moto's server: what is in use stays, shared snapshots stay, every page is
read, ties break by image id."""

from __future__ import annotations

from datetime import timedelta

from tests.ami.conftest import T0


def at(minutes: int):
    return T0 + timedelta(minutes=minutes)


def test_in_use_images_are_kept_the_rest_go_with_their_snapshots(ami_env):
    env = ami_env
    ids = [env.bake(at(n)) for n in range(8)]  # ids[7] newest
    # In use: a running instance, a stopped instance, a launch-template version (not the
    # latest one), a launch configuration.
    running = env.ec2.run_instances(ImageId=ids[0], MinCount=1, MaxCount=1)["Instances"][0]
    stopped = env.ec2.run_instances(ImageId=ids[1], MinCount=1, MaxCount=1)["Instances"][0]
    env.ec2.stop_instances(InstanceIds=[stopped["InstanceId"]])
    gone_instance = env.ec2.run_instances(ImageId=ids[4], MinCount=1, MaxCount=1)["Instances"][0]
    env.ec2.terminate_instances(InstanceIds=[gone_instance["InstanceId"]])
    lt = env.template(ids[2])
    env.version(lt, ids[7])
    env.asg.create_launch_configuration(LaunchConfigurationName=env.name("lc"), ImageId=ids[3],
                                        InstanceType="t3.micro")
    other = env.bake(at(1), branch=f"other-{env.branch}")  # another branch: never touched
    snaps = {i: env.snapshot_of(i) for i in ids}

    result = env.runner().prune(env.branch, 2)

    assert result.ok
    why = {d.image.image_id: d.reasons for d in result.plan.images}
    assert f"instance {running['InstanceId']} (running)" in why[ids[0]]
    assert f"instance {stopped['InstanceId']} (stopped)" in why[ids[1]]
    assert f"launch template lt-{env.branch} v1" in why[ids[2]]
    assert f"launch configuration lc-{env.branch}" in why[ids[3]]
    assert why[ids[7]][0] == "newest 2 (#1)" and why[ids[6]] == ["newest 2 (#2)"]
    assert sorted(result.deregistered) == sorted([ids[4], ids[5]])  # terminated instance: not in use
    for i in ids:
        assert env.image_exists(i) == (i not in (ids[4], ids[5]))
        assert env.snapshot_exists(snaps[i]) == (i not in (ids[4], ids[5]))
    assert env.image_exists(other)
    # DescribeImageReferences was asked (through the stand-in: moto lacks it).
    refs = [p for op, p in env.standin.calls if op == "DescribeImageReferences"]
    assert refs and set(refs[0]["ImageIds"]) == set(ids)
    assert env.notes.notices[-1].title == f"images pruned: {env.branch}"
    assert env.notes.notices[-1].fields["deregistered"] == result.deregistered


def test_a_snapshot_another_image_still_uses_is_kept(ami_env):
    env = ami_env
    old, mid, new1, new2 = (env.bake(at(n)) for n in range(4))
    keeper = env.bake(at(9), branch=f"other-{env.branch}")
    shared = env.share_snapshot(owner=old, borrower=keeper)  # keeper uses old's snapshot
    mid_snap = env.snapshot_of(mid)

    result = env.runner().prune(env.branch, 2)

    assert sorted(result.deregistered) == sorted([old, mid])
    assert result.snapshots_deleted == [mid_snap]
    assert env.snapshot_exists(shared) and not env.snapshot_exists(mid_snap)
    kept = [s for s in result.plan.snapshots if not s.delete]
    assert [(s.snapshot_id, s.reason) for s in kept] == [(shared, f"also used by {keeper}")]


def test_every_page_is_read_and_ties_break_by_image_id(ami_env):
    env = ami_env
    env.standin.image_page_size = 3  # moto answers in one page; the stand-in pages like AWS
    ids = [env.bake(at(0)) for _ in range(4)] + [env.bake(at(n)) for n in range(1, 8)]

    result = env.runner().prune(env.branch, 3, dry_run=True)

    pages = [p for op, p in env.standin.calls if op == "DescribeImages"]
    assert len(pages) >= 4  # > 11 images (and the other tests') in pages of 3
    tied = sorted(ids[:4])
    kept = [d.image.image_id for d in result.plan.images if not d.delete]
    assert kept == [ids[10], ids[9], ids[8]]
    assert [d.image.image_id for d in result.plan.images][-4:] == tied[::-1]  # greater id = newer
    assert len(result.plan.to_delete) == 8
    # A dry run changes nothing.
    assert result.deregistered == [] and all(env.image_exists(i) for i in ids)


def test_deregistration_protection_keeps_an_image(ami_env):
    env = ami_env
    ids = [env.bake(at(n)) for n in range(4)]
    env.ec2.enable_image_deregistration_protection(ImageId=ids[0])

    result = env.runner().prune(env.branch, 2)

    assert result.deregistered == [ids[1]]
    assert [d.reasons for d in result.plan.images if d.image.image_id == ids[0]] == \
        [["deregistration protection"]]
    assert env.image_exists(ids[0])


def test_without_describe_image_references_the_scans_still_keep_what_is_in_use(ami_env):
    env = ami_env
    ids = [env.bake(at(n)) for n in range(4)]
    env.template(ids[0])
    env.standin.faults["DescribeImageReferences"] = ["InvalidAction"]  # an endpoint without it
    runner = env.runner()

    result = runner.prune(env.branch, 2)

    assert result.deregistered == [ids[1]]
    assert [d.reasons for d in result.plan.images if d.image.image_id == ids[0]] == \
        [[f"launch template lt-{env.branch} v1"]]
    assert any("DescribeImageReferences is not available" in n for n in runner.aws.notes)
    assert not any("DescribeImageReferences" in c for c in runner.aws.checked)
