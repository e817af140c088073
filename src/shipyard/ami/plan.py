"""The AMI pipeline's decisions: pure functions over plain data, time passed in, no I/O.

- `plan_image_prune`: which images of a branch go, and why every kept one is kept.
- `plan_version_prune`: which launch-template versions go (never the default, never one in use).
- `release_version_data`: the new launch-template version's data (the default's, image changed).
- `refresh_preferences`: the StartInstanceRefresh request for a numbered version.
- `refresh_step`: what to do after one poll of a refresh (wait, cancel, roll back, or finish).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Literal, Mapping

from shipyard.ami.model import MIN_KEEP, TERMINAL_STATES, Image, Outcome, RefreshStatus
from shipyard.errors import InputError


# Images that will never be usable (a failed bake): they neither count towards the newest N nor
# stay, unless something uses them. Every other state but "available" (pending, transient,
# disabled) is kept as it is. https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Image.html
BROKEN_STATES = frozenset({"failed", "error", "invalid"})


def newest_first(images: Iterable[Image]) -> list[Image]:
    """Newest first by CreationDate; on equal dates the greater image id counts as newer, so the
    order is total and the same on every run (AWS returns images in no stated order)."""
    return sorted(images, key=lambda i: (i.created, i.image_id), reverse=True)


def _check_keep(keep: int, what: str) -> None:
    if keep < MIN_KEEP:
        raise InputError(f"--keep{'-versions' if what == 'versions' else ''} must be at least "
                         f"{MIN_KEEP} (got {keep})",
                         hint="keep the release before the current one so there is something "
                         "to roll back to")


@dataclass
class ImageDecision:
    image: Image
    delete: bool
    reasons: list[str] = field(default_factory=list)  # why it is kept (empty when deleted)


@dataclass
class SnapshotDecision:
    snapshot_id: str
    image_id: str  # the deleted image it belonged to
    delete: bool
    reason: str = ""  # why it is kept


@dataclass
class ImagePrunePlan:
    branch: str
    keep: int
    images: list[ImageDecision]
    snapshots: list[SnapshotDecision]

    @property
    def to_delete(self) -> list[Image]:
        return [d.image for d in self.images if d.delete]

    @property
    def snapshots_to_delete(self) -> list[str]:
        return [s.snapshot_id for s in self.snapshots if s.delete]

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(image, created, action, why, snapshots) per image, newest first."""
        snaps: dict[str, list[str]] = {}
        for s in self.snapshots:
            snaps.setdefault(s.image_id, []).append(
                s.snapshot_id + ("" if s.delete else f" (kept: {s.reason})"))
        return [(d.image.image_id, d.image.created.isoformat(timespec="seconds"),
                 "delete" if d.delete else "keep", "; ".join(d.reasons),
                 ", ".join(snaps.get(d.image.image_id, d.image.snapshots if not d.delete else ())))
                for d in self.images]

    def to_dict(self) -> dict[str, Any]:
        return {"branch": self.branch, "keep": self.keep,
                "images": [{"image_id": d.image.image_id, "name": d.image.name,
                            "created": d.image.created.isoformat(),
                            "action": "delete" if d.delete else "keep", "reasons": d.reasons}
                           for d in self.images],
                "snapshots": [{"snapshot_id": s.snapshot_id, "image_id": s.image_id,
                               "action": "delete" if s.delete else "keep", "reason": s.reason}
                              for s in self.snapshots]}


def plan_image_prune(branch: str, images: Iterable[Image], keep: int,
                     in_use: Mapping[str, list[str]], all_images: Iterable[Image] = ()) -> ImagePrunePlan:
    """Keep the newest `keep` available images of `branch`, and any image that is in use,
    protected, or pending/disabled; the rest (failed bakes included) go. A deleted image's snapshots go too, unless an image that stays
    (of any branch: `all_images`) still uses them.

    `images` are the branch's images; `in_use` maps image id -> what uses it (instances, launch
    template versions, launch configurations, DescribeImageReferences hits).
    """
    _check_keep(keep, "images")
    decisions = []
    rank = 0
    for image in newest_first(images):
        reasons = []
        if image.state == "available":  # only a usable image counts towards the newest N
            rank += 1
            if rank <= keep:
                reasons.append(f"newest {keep} (#{rank})")
        elif image.state not in BROKEN_STATES:
            reasons.append(f"state {image.state}")
        reasons.extend(in_use.get(image.image_id, []))
        if image.protected:
            reasons.append("deregistration protection")
        decisions.append(ImageDecision(image, delete=not reasons, reasons=reasons))
    going = {d.image.image_id for d in decisions if d.delete}
    users: dict[str, list[str]] = {}
    for image in [*all_images, *(d.image for d in decisions)]:
        if image.image_id not in going:
            for snap in image.snapshots:
                if image.image_id not in users.setdefault(snap, []):
                    users[snap].append(image.image_id)
    snapshots = []
    for d in decisions:
        if d.delete:
            for snap in d.image.snapshots:
                others = users.get(snap, [])
                snapshots.append(SnapshotDecision(
                    snap, d.image.image_id, delete=not others,
                    reason=f"also used by {', '.join(sorted(others))}" if others else ""))
    return ImagePrunePlan(branch, keep, decisions, snapshots)


@dataclass
class VersionPrunePlan:
    keep: int
    default: int
    keep_versions: dict[int, list[str]]  # version -> why it stays
    delete: list[int]


def plan_version_prune(versions: Iterable[int], default: int, keep: int,
                       in_use: Mapping[int, list[str]]) -> VersionPrunePlan:
    """Keep the newest `keep` versions, the default version, and every version in use (by an
    ASG, an ASG instance, or an instance refresh that has not finished); the rest go."""
    _check_keep(keep, "versions")
    kept: dict[int, list[str]] = {}
    going = []
    for rank, v in enumerate(sorted(set(versions), reverse=True), start=1):
        reasons = []
        if rank <= keep:
            reasons.append(f"newest {keep} (#{rank})")
        if v == default:
            reasons.append("default version")
        reasons.extend(in_use.get(v, []))
        if reasons:
            kept[v] = reasons
        else:
            going.append(v)
    return VersionPrunePlan(keep, default, kept, sorted(going))


def release_version_data(source: Mapping[str, Any], image_id: str,
                         request_keys: Iterable[str]) -> dict[str, Any]:
    """The new version's LaunchTemplateData: the source version's, with only ImageId changed.

    `request_keys` are the members of EC2's RequestLaunchTemplateData shape: a key that
    DescribeLaunchTemplateVersions returns but CreateLaunchTemplateVersion does not accept
    would fail the call, so it is left to SourceVersion to carry.
    """
    allowed = set(request_keys)
    data = {k: v for k, v in source.items() if k in allowed}
    if isinstance(data.get("ImageId"), str) and data["ImageId"].startswith("resolve:ssm:"):
        raise InputError("the launch template's ImageId is a Systems Manager parameter "
                         f"({data['ImageId']})",
                         hint="a refresh cannot roll back such a template; point ImageId at an AMI id")
    data["ImageId"] = image_id
    return data


def refresh_preferences(*, min_healthy: int, warmup: int, checkpoints: list[int],
                        checkpoint_delay: int) -> dict[str, Any]:
    """RefreshPreferences: roll back on failure, skip instances already on the desired
    configuration (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RefreshPreferences.html)."""
    prefs: dict[str, Any] = {"MinHealthyPercentage": min_healthy, "InstanceWarmup": warmup,
                             "SkipMatching": True, "AutoRollback": True}
    if checkpoints:
        prefs["CheckpointPercentages"] = list(checkpoints)
        prefs["CheckpointDelay"] = checkpoint_delay
    return prefs


def desired_configuration(template_id: str, version: int) -> dict[str, Any]:
    """A NUMBERED version: AutoRollback is refused for $Latest/$Default, and a number means the
    refresh rolls out exactly the version we made, whatever is created after it."""
    if not isinstance(version, int) or version < 1:
        raise InputError(f"a refresh needs a numbered launch-template version, got {version!r}")
    return {"LaunchTemplate": {"LaunchTemplateId": template_id, "Version": str(version)}}


@dataclass(frozen=True)
class RefreshStep:
    action: Literal["wait", "cancel", "rollback", "finish"]
    outcome: Outcome | None = None
    note: str = ""


_FINAL = {"Successful": Outcome.SUCCEEDED, "Failed": Outcome.FAILED,
          "Cancelled": Outcome.CANCELLED, "RollbackSuccessful": Outcome.ROLLED_BACK,
          "RollbackFailed": Outcome.ROLLBACK_FAILED}


def refresh_step(refresh: RefreshStatus, now: datetime, deadline: datetime,
                 on_timeout: Literal["rollback", "cancel"], acted_at: datetime | None,
                 settle_deadline: datetime | None) -> RefreshStep:
    """The next move after polling `refresh` at `now`.

    Before the deadline: wait until a terminal state. At the deadline: roll back or cancel, once
    (`acted_at` says it was done), then follow the refresh until it settles; a refresh that
    settles after our timeout ends as TIMED_OUT whatever its final state, except a failed
    rollback, which is worse and says so. If it has not settled by `settle_deadline`, stop
    watching: TIMED_OUT, with the state it was left in.
    """
    if refresh.status in TERMINAL_STATES:
        outcome = _FINAL[refresh.status]
        if acted_at is not None and outcome is not Outcome.ROLLBACK_FAILED:
            return RefreshStep("finish", Outcome.TIMED_OUT, f"timed out; refresh {refresh.status}")
        return RefreshStep("finish", outcome, refresh.reason)
    if acted_at is None:
        if now >= deadline:
            return RefreshStep(on_timeout, None, f"timed out while {refresh.status}")
        return RefreshStep("wait")
    if settle_deadline is not None and now >= settle_deadline:
        return RefreshStep("finish", Outcome.TIMED_OUT,
                           f"timed out; still {refresh.status} after the {on_timeout}")
    return RefreshStep("wait")
