"""The AMI pipeline's decisions, without AWS: plain data in, decisions out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shipyard.ami.build import artifact_images, check_image_tags, parse_machine_readable
from shipyard.ami.model import Image, Outcome, RefreshStatus, ReleaseOptions, parse_checkpoints, parse_duration
from shipyard.ami.plan import (
    desired_configuration,
    newest_first,
    plan_image_prune,
    plan_version_prune,
    refresh_preferences,
    refresh_step,
    release_version_data,
)
from shipyard.errors import InputError

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def img(n: int, *, minutes: int | None = None, snaps: tuple[str, ...] | None = None, **kw) -> Image:
    return Image(f"ami-{n:04d}", T0 + timedelta(minutes=n if minutes is None else minutes),
                 snapshots=(f"snap-{n:04d}",) if snaps is None else snaps, **kw)


def test_newest_first_orders_by_creation_then_image_id():
    a, b, c = img(1, minutes=5), img(2, minutes=5), img(3, minutes=1)
    assert [i.image_id for i in newest_first([c, a, b])] == ["ami-0002", "ami-0001", "ami-0003"]
    assert newest_first([b, a, c]) == newest_first([c, b, a])  # input order does not matter


def test_prune_keeps_newest_n_and_says_why():
    images = [img(n) for n in range(1, 6)]
    plan = plan_image_prune("main", images, 2, {})
    assert [i.image_id for i in plan.to_delete] == ["ami-0003", "ami-0002", "ami-0001"]
    kept = {d.image.image_id: d.reasons for d in plan.images if not d.delete}
    assert kept == {"ami-0005": ["newest 2 (#1)"], "ami-0004": ["newest 2 (#2)"]}
    assert plan.snapshots_to_delete == ["snap-0003", "snap-0002", "snap-0001"]


def test_ties_on_creation_date_keep_the_greater_image_id():
    images = [img(n, minutes=0) for n in (7, 3, 9)]
    plan = plan_image_prune("main", images, 2, {})
    assert [i.image_id for i in plan.to_delete] == ["ami-0003"]


def test_a_failed_bake_neither_counts_towards_the_newest_nor_stays():
    images = [img(1), img(2), img(3, state="failed"), img(4, state="disabled")]
    plan = plan_image_prune("main", images, 2, {})
    why = {d.image.image_id: d.reasons for d in plan.images}
    assert why == {"ami-0004": ["state disabled"], "ami-0003": [], "ami-0002": ["newest 2 (#1)"],
                   "ami-0001": ["newest 2 (#2)"]}
    assert [i.image_id for i in plan.to_delete] == ["ami-0003"]


def test_in_use_protected_and_pending_images_are_kept_with_reasons():
    images = [img(n) for n in range(1, 7)]
    images[0] = img(1, protected=True)
    images[1] = img(2, state="pending")
    in_use = {"ami-0003": ["instance i-1 (stopped)"], "ami-0004": ["launch template web v3"]}
    plan = plan_image_prune("main", images, 2, in_use)
    why = {d.image.image_id: d.reasons for d in plan.images}
    assert plan.to_delete == []
    assert why["ami-0001"] == ["deregistration protection"]
    assert why["ami-0002"] == ["state pending"]
    assert why["ami-0003"] == ["instance i-1 (stopped)"]
    assert why["ami-0004"] == ["launch template web v3"]


def test_a_snapshot_another_image_uses_is_kept():
    old = img(1, snaps=("snap-shared", "snap-own"))
    other_branch = img(50, snaps=("snap-shared",))  # not this branch's, but stays
    images = [old, img(2), img(3)]
    plan = plan_image_prune("main", images, 2, {}, all_images=[other_branch, *images])
    assert plan.snapshots_to_delete == ["snap-own"]
    kept = [s for s in plan.snapshots if not s.delete]
    assert [(s.snapshot_id, s.reason) for s in kept] == [("snap-shared", "also used by ami-0050")]


def test_a_snapshot_shared_by_two_deleted_images_goes():
    images = [img(1, snaps=("snap-x",)), img(2, snaps=("snap-x",)), img(3), img(4)]
    plan = plan_image_prune("main", images, 2, {})
    assert sorted(set(plan.snapshots_to_delete)) == ["snap-x"]


@pytest.mark.parametrize("keep", [0, 1, -3])
def test_keep_below_two_is_refused(keep):
    with pytest.raises(InputError, match="at least 2"):
        plan_image_prune("main", [img(1)], keep, {})
    with pytest.raises(InputError, match="at least 2"):
        plan_version_prune([1, 2, 3], 1, keep, {})


def test_version_prune_never_touches_default_or_in_use():
    plan = plan_version_prune(range(1, 11), default=2, keep=3, in_use={5: ["ASG web"],
                                                                      7: ["refresh r (InProgress)"]})
    assert plan.delete == [1, 3, 4, 6]
    assert plan.keep_versions[2] == ["default version"]
    assert plan.keep_versions[5] == ["ASG web"]
    assert plan.keep_versions[10] == ["newest 3 (#1)"]


def test_release_data_changes_only_the_image_and_drops_unknown_keys():
    source = {"ImageId": "ami-old", "InstanceType": "t3.micro", "UserData": "eA==",
              "SecurityGroupIds": ["sg-1"], "ResponseOnly": 1}
    data = release_version_data(source, "ami-new", ["ImageId", "InstanceType", "UserData",
                                                    "SecurityGroupIds"])
    assert data == {"ImageId": "ami-new", "InstanceType": "t3.micro", "UserData": "eA==",
                    "SecurityGroupIds": ["sg-1"]}
    with pytest.raises(InputError, match="Systems Manager"):
        release_version_data({"ImageId": "resolve:ssm:/golden"}, "ami-new", ["ImageId"])


def test_refresh_request_names_a_numbered_version_with_autorollback():
    assert desired_configuration("lt-1", 7) == {"LaunchTemplate": {"LaunchTemplateId": "lt-1",
                                                                   "Version": "7"}}
    with pytest.raises(InputError):
        desired_configuration("lt-1", "$Latest")  # type: ignore[arg-type]
    prefs = refresh_preferences(min_healthy=90, warmup=60, checkpoints=[20, 50, 100],
                                checkpoint_delay=120)
    assert prefs == {"MinHealthyPercentage": 90, "InstanceWarmup": 60, "SkipMatching": True,
                     "AutoRollback": True, "CheckpointPercentages": [20, 50, 100],
                     "CheckpointDelay": 120}
    assert "CheckpointPercentages" not in refresh_preferences(min_healthy=90, warmup=0,
                                                              checkpoints=[], checkpoint_delay=1)


def st(status: str) -> RefreshStatus:
    return RefreshStatus("r-1", status, 50, 2)


DEADLINE = T0 + timedelta(minutes=30)


@pytest.mark.parametrize("status,outcome", [
    ("Successful", Outcome.SUCCEEDED), ("Failed", Outcome.FAILED), ("Cancelled", Outcome.CANCELLED),
    ("RollbackSuccessful", Outcome.ROLLED_BACK), ("RollbackFailed", Outcome.ROLLBACK_FAILED)])
def test_terminal_states_finish_with_their_outcome(status, outcome):
    step = refresh_step(st(status), T0, DEADLINE, "rollback", None, None)
    assert (step.action, step.outcome) == ("finish", outcome)


@pytest.mark.parametrize("status", ["Pending", "InProgress", "Baking", "RollbackInProgress", "Cancelling"])
def test_unfinished_states_wait_until_the_deadline_then_act_once(status):
    assert refresh_step(st(status), T0, DEADLINE, "rollback", None, None).action == "wait"
    assert refresh_step(st(status), DEADLINE, DEADLINE, "rollback", None, None).action == "rollback"
    assert refresh_step(st(status), DEADLINE, DEADLINE, "cancel", None, None).action == "cancel"
    # Acted already: follow it, then give up watching at the settle deadline.
    settle = DEADLINE + timedelta(minutes=15)
    assert refresh_step(st(status), DEADLINE, DEADLINE, "cancel", DEADLINE, settle).action == "wait"
    late = refresh_step(st(status), settle, DEADLINE, "cancel", DEADLINE, settle)
    assert (late.action, late.outcome) == ("finish", Outcome.TIMED_OUT)


def test_a_refresh_ended_by_our_timeout_is_timed_out_unless_the_rollback_failed():
    acted = DEADLINE
    assert refresh_step(st("RollbackSuccessful"), acted, DEADLINE, "rollback", acted, None).outcome \
        is Outcome.TIMED_OUT
    assert refresh_step(st("Cancelled"), acted, DEADLINE, "cancel", acted, None).outcome is Outcome.TIMED_OUT
    assert refresh_step(st("RollbackFailed"), acted, DEADLINE, "rollback", acted, None).outcome \
        is Outcome.ROLLBACK_FAILED


def test_outcomes_have_distinct_exit_codes():
    codes = {o: o.exit_code for o in Outcome if o is not Outcome.UNCHANGED}
    assert len(set(codes.values())) == len(codes)
    assert Outcome.SUCCEEDED.exit_code == 0 and 2 not in codes.values() and 3 not in codes.values()


def test_durations_checkpoints_and_options():
    assert [parse_duration(x) for x in ("30m", "90s", "1h", "45", 12)] == [1800, 90, 3600, 45, 12]
    for bad in ("soon", "-5m", "0"):
        with pytest.raises(InputError):
            parse_duration(bad)
    assert parse_checkpoints("20,50,100") == [20, 50, 100] and parse_checkpoints(None) == []
    for bad in ("50,20,100", "20,50", "0,100", "x", "20,20,100"):
        with pytest.raises(InputError):
            parse_checkpoints(bad)
    with pytest.raises(ValueError, match="at least 2"):
        ReleaseOptions(branch="m", launch_template="lt", asg="a", keep_versions=1)
    with pytest.raises(ValueError, match="extra"):
        ReleaseOptions(branch="m", launch_template="lt", asg="a", keep_version=3)


PACKER_OUTPUT = """\
1700000000,,ui,say,==> amazon-ebs: Creating AMI shipyard-main from instance i-0abc
1700000001,amazon-ebs,artifact-count,1
1700000001,amazon-ebs,artifact,0,builder-id,mitchellh.amazonebs
1700000001,amazon-ebs,artifact,0,id,us-east-1:ami-0aaa%!(PACKER_COMMA)eu-west-1:ami-0bbb
1700000001,amazon-ebs,artifact,0,string,AMIs were created:\\nus-east-1: ami-0aaa\\n
1700000001,amazon-ebs,artifact,0,files-count,0
1700000001,amazon-ebs,artifact,0,end
a stray log line
"""


def test_packer_machine_readable_output_gives_every_region_and_ami():
    lines = list(parse_machine_readable(PACKER_OUTPUT.splitlines()))
    assert artifact_images(lines) == [("us-east-1", "ami-0aaa"), ("eu-west-1", "ami-0bbb")]
    string = next(ln for ln in lines if ln.data[1:2] == ("string",))
    assert string.data[2] == "AMIs were created:\nus-east-1: ami-0aaa\n"


def test_image_tags_must_name_the_branch_and_this_build():
    started, now = T0, T0 + timedelta(minutes=20)
    good = {"branch": "main", "timestamp": str(int((T0 + timedelta(minutes=3)).timestamp()))}
    assert check_image_tags(good, "main", started, now) == []
    assert check_image_tags({**good, "timestamp": "2026-11-01T00:10:00Z"}, "main", started, now) == []
    assert "expected 'main'" in check_image_tags({**good, "branch": "dev"}, "main", started, now)[0]
    assert "no timestamp" in check_image_tags({"branch": "main"}, "main", started, now)[0]
    assert "not a Unix" in check_image_tags({**good, "timestamp": "yesterday"}, "main", started, now)[0]
    old = str(int((T0 - timedelta(days=2)).timestamp()))
    assert "not within this build" in check_image_tags({**good, "timestamp": old}, "main", started, now)[0]
