"""Executes the AMI pipeline's plans against AWS: prune images, release to an ASG.

Every step sends a notice (shipyard.notify: the outbox, or Slack through jarvis). Time comes
from a `Clock` so a refresh's timeout is tested without waiting.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from shipyard.ami.aws import AmiAws
from shipyard.ami.model import Image, Outcome, RefreshStatus, ReleaseOptions
from shipyard.ami.plan import (
    ImagePrunePlan,
    VersionPrunePlan,
    desired_configuration,
    newest_first,
    plan_image_prune,
    plan_version_prune,
    refresh_preferences,
    refresh_step,
    release_version_data,
)
from shipyard.errors import InputError, NotFoundError, ShipyardError, TransientError
from shipyard.notify import Notice, Notifier, get_notifier
from shipyard.retry import Backoff

log = logging.getLogger("shipyard.ami")
MAX_POLL_FAILURES = 10  # consecutive failed polls (each already retried by botocore)


@dataclass
class Clock:
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    sleep: Callable[[float], None] = time.sleep


@dataclass
class PruneResult:
    plan: ImagePrunePlan
    dry_run: bool
    deregistered: list[str] = field(default_factory=list)
    snapshots_deleted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, why)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class ReleaseResult:
    outcome: Outcome
    image_id: str
    template_id: str
    version: int | None = None
    refresh_id: str | None = None
    message: str = ""
    versions: VersionPrunePlan | None = None
    versions_refused: list[tuple[int, str]] = field(default_factory=list)
    prune: PruneResult | None = None
    cleanup_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "image_id": self.image_id,
                "launch_template": self.template_id, "version": self.version,
                "refresh_id": self.refresh_id, "message": self.message,
                "versions_deleted": [] if self.versions is None else self.versions.delete,
                "versions_refused": self.versions_refused,
                "images_deregistered": [] if self.prune is None else self.prune.deregistered,
                "snapshots_deleted": [] if self.prune is None else self.prune.snapshots_deleted,
                "cleanup_error": self.cleanup_error}


@dataclass
class ReleasePlan:
    image: Image  # the branch's newest available image
    template_id: str
    template_name: str
    group: str
    default_version: int  # the version the new one copies
    unchanged: bool  # the default version already runs `image`
    data: dict[str, Any]  # the new version's LaunchTemplateData
    preferences: dict[str, Any]  # StartInstanceRefresh's Preferences

    def to_dict(self) -> dict[str, Any]:
        return {"image_id": self.image.image_id, "image_created": self.image.created.isoformat(),
                "launch_template": self.template_id, "template_name": self.template_name,
                "asg": self.group, "source_version": self.default_version,
                "unchanged": self.unchanged, "launch_template_data": self.data,
                "refresh": {"Strategy": "Rolling", "DesiredConfiguration": {"LaunchTemplate": {
                    "LaunchTemplateId": self.template_id, "Version": "<the new version>"}},
                    "Preferences": self.preferences}}


class AmiRunner:
    def __init__(self, aws: AmiAws, *, notifier: Notifier | None = None, channel: str | None = None,
                 branch_tag: str = "branch", clock: Clock | None = None,
                 on_progress: Callable[[RefreshStatus], None] | None = None) -> None:
        self.aws = aws
        self.notifier = notifier or get_notifier()
        self.channel = channel
        self.branch_tag = branch_tag
        self.clock = clock or Clock()
        self.on_progress = on_progress or (lambda status: None)

    def _notice(self, level: str, title: str, message: str, **fields: Any) -> None:
        self.notifier.send(Notice(tool="ami", level=level, title=title, message=message,  # type: ignore[arg-type]
                                  channel=self.channel, fields=fields))

    def branch_images(self, images: list[Image], branch: str) -> list[Image]:
        return [i for i in images if i.tags.get(self.branch_tag) == branch]

    # ---- prune --------------------------------------------------------------------------

    def plan_prune(self, branch: str, keep: int) -> ImagePrunePlan:
        images = self.aws.images()
        mine = self.branch_images(images, branch)
        in_use = self.aws.images_in_use(i.image_id for i in mine)
        return plan_image_prune(branch, mine, keep, in_use, images)

    def prune(self, branch: str, keep: int, *, dry_run: bool = False) -> PruneResult:
        """Deregister the images the plan lets go, then their snapshots no image still uses."""
        plan = self.plan_prune(branch, keep)
        result = PruneResult(plan, dry_run)
        if dry_run or not plan.to_delete:
            return result
        gone = set()
        for image in plan.to_delete:
            try:
                self.aws.deregister(image.image_id)
            except ShipyardError as exc:
                result.failed.append((image.image_id, exc.message))
                continue
            gone.add(image.image_id)
            result.deregistered.append(image.image_id)
        for snap in plan.snapshots:
            if not snap.delete or snap.image_id not in gone:
                continue
            try:
                kept = self.aws.delete_snapshot(snap.snapshot_id)
            except ShipyardError as exc:
                result.failed.append((snap.snapshot_id, exc.message))
                continue
            if kept:
                result.failed.append((snap.snapshot_id, kept))
            else:
                result.snapshots_deleted.append(snap.snapshot_id)
        level = "success" if result.ok else "failure"
        self._notice(level, f"images pruned: {branch}",
                     f"{len(result.deregistered)} images deregistered, "
                     f"{len(result.snapshots_deleted)} snapshots deleted, "
                     f"{len(plan.images) - len(plan.to_delete)} kept"
                     + (f"; {len(result.failed)} failed" if result.failed else ""),
                     deregistered=result.deregistered, snapshots=result.snapshots_deleted,
                     failed=[f"{i}: {why}" for i, why in result.failed])
        return result

    # ---- release ------------------------------------------------------------------------

    def plan_release(self, opts: ReleaseOptions) -> ReleasePlan:
        """Everything a release will ask AWS for, read and checked before anything changes
        (what `release --dry-run` prints)."""
        available = [i for i in self.branch_images(self.aws.images(), opts.branch)
                     if i.state == "available"]
        if not available:
            raise NotFoundError(f"no available image tagged {self.branch_tag}={opts.branch}",
                                hint="bake one first: shipyard ami build --template FILE "
                                f"--branch {opts.branch}")
        image = newest_first(available)[0]
        template = self.aws.template(opts.launch_template)
        group = self.aws.group(opts.asg)
        self._check_group(group, template)
        default = self.aws.version_data(template["LaunchTemplateId"], "$Default")
        source = default.get("LaunchTemplateData", {})
        return ReleasePlan(
            image=image, template_id=template["LaunchTemplateId"],
            template_name=template["LaunchTemplateName"], group=opts.asg,
            default_version=int(default["VersionNumber"]),
            unchanged=source.get("ImageId") == image.image_id,
            data=release_version_data(source, image.image_id, self.aws.request_data_keys()),
            preferences=refresh_preferences(min_healthy=opts.min_healthy, warmup=opts.warmup,
                                            checkpoints=opts.checkpoints,
                                            checkpoint_delay=opts.checkpoint_delay))

    def release(self, opts: ReleaseOptions) -> ReleaseResult:
        """New launch-template version with the branch's newest image, an instance refresh to
        that numbered version with AutoRollback, followed to its end; on success the version
        becomes the default and old versions, then old images, are pruned."""
        plan = self.plan_release(opts)
        image, tid, default_number = plan.image, plan.template_id, plan.default_version
        if plan.unchanged:
            msg = f"{plan.template_name} v{default_number} already runs {image.image_id}"
            self._notice("info", f"nothing to release: {opts.branch}", msg)
            return ReleaseResult(Outcome.UNCHANGED, image.image_id, tid, default_number, message=msg)

        version = self.aws.create_version(tid, default_number, plan.data,
                                          f"shipyard ami release {opts.branch} {image.image_id}")
        self._notice("info", f"launch template version created: {opts.branch}",
                     f"{plan.template_name} v{version} = v{default_number} "
                     f"with image {image.image_id}", version=version, image=image.image_id)
        refresh_id = self.aws.start_refresh(opts.asg, desired_configuration(tid, version),
                                            plan.preferences)
        self._notice("info", f"instance refresh started: {opts.asg}",
                     f"refresh {refresh_id} to {plan.template_name} v{version} "
                     f"(AutoRollback, min healthy {opts.min_healthy}%, warmup {opts.warmup}s)",
                     refresh_id=refresh_id, version=version)
        try:
            outcome, message = self._follow(opts, refresh_id)
        except (KeyboardInterrupt, ShipyardError) as exc:
            # We stop following; the refresh goes on (and rolls itself back on failure).
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else exc.message
            self._notice("warning", f"release no longer followed: {opts.branch} -> {opts.asg}",
                         f"{why}; refresh {refresh_id} continues on AWS: aws autoscaling "
                         f"describe-instance-refreshes --auto-scaling-group-name {opts.asg} "
                         f"--instance-refresh-ids {refresh_id}", refresh_id=refresh_id)
            raise
        result = ReleaseResult(outcome, image.image_id, tid, version, refresh_id, message)
        if outcome is not Outcome.SUCCEEDED:
            self._notice("failure", f"release {outcome.value}: {opts.branch} -> {opts.asg}",
                         f"refresh {refresh_id} {outcome.value}"
                         + (f": {message}" if message else "")
                         + f"; {plan.template_name} stays on v{default_number}",
                         refresh_id=refresh_id, outcome=outcome.value)
            return result

        self.aws.set_default(tid, version)
        self._notice("success", f"released: {opts.branch} -> {opts.asg}",
                     f"{image.image_id} is live; {plan.template_name} default is now "
                     f"v{version}", image=image.image_id, version=version, refresh_id=refresh_id)
        # Versions before images: an old image stops counting as in use once the versions
        # naming it are gone. The release has succeeded: a failed clean-up is reported (notice,
        # result) without changing the outcome; the next release retries it.
        try:
            result.versions, result.versions_refused = self.prune_versions(tid, opts.keep_versions)
            result.prune = self.prune(opts.branch, opts.keep_images)
        except ShipyardError as exc:
            result.cleanup_error = exc.message
            self._notice("warning", f"clean-up after the release failed: {opts.branch}", exc.message)
        return result

    def _check_group(self, group: dict[str, Any], template: dict[str, Any]) -> None:
        """Before anything changes: the group uses this template, at a numbered version (a
        refresh of a group on $Latest/$Default cannot roll back), with no refresh running."""
        name = group["AutoScalingGroupName"]
        if group.get("MixedInstancesPolicy"):
            raise InputError(f"auto scaling group {name} has a mixed instances policy; "
                             "releasing to such groups is not supported yet",
                             hint="docs/ami.md#limits")
        spec = group.get("LaunchTemplate") or {}
        if spec.get("LaunchTemplateId") != template["LaunchTemplateId"]:
            raise InputError(f"auto scaling group {name} does not use launch template "
                             f"{template['LaunchTemplateName']}",
                             hint=f"it uses {spec.get('LaunchTemplateName') or 'no launch template'}; "
                             "check --asg and --launch-template")
        if not str(spec.get("Version", "")).isdigit():
            raise InputError(
                f"auto scaling group {name} uses version {spec.get('Version') or '$Default'} of "
                f"{template['LaunchTemplateName']}; a refresh from $Latest/$Default cannot roll back",
                hint=f"pin the group to a number once: aws autoscaling update-auto-scaling-group "
                f"--auto-scaling-group-name {name} --launch-template LaunchTemplateId="
                f"{template['LaunchTemplateId']},Version={template['DefaultVersionNumber']}")
        active = [r for r in self.aws.refreshes(name) if r.get("Status") in
                  ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")]
        if active:
            raise ShipyardError(f"instance refresh {active[0]['InstanceRefreshId']} of {name} is "
                                f"still {active[0]['Status']}",
                                hint="wait for it to finish, or cancel it (aws autoscaling "
                                "cancel-instance-refresh) and release again")

    def _follow(self, opts: ReleaseOptions, refresh_id: str) -> tuple[Outcome, str]:
        """Poll THAT refresh until it ends; at the timeout roll back or cancel it, once."""
        deadline = self.clock.now() + timedelta(seconds=opts.timeout)
        acted_at: datetime | None = None
        settle: datetime | None = None
        backoff = Backoff(base=opts.poll_interval, cap=max(60.0, opts.poll_interval))
        while True:
            try:
                status = self.aws.refresh(opts.asg, refresh_id)
                backoff.succeeded()
            except TransientError as exc:
                # Throttled or unreachable: the refresh goes on without us; keep following it
                # (the deadline still holds), unless AWS stays away for long.
                if backoff.failures >= MAX_POLL_FAILURES:
                    raise
                log.warning("polling refresh %s: %s", refresh_id, exc.message)
                self.clock.sleep(backoff.failed())
                continue
            self.on_progress(status)
            now = self.clock.now()
            step = refresh_step(status, now, deadline, opts.on_timeout, acted_at, settle)
            if step.action == "finish":
                assert step.outcome is not None
                return step.outcome, step.note
            if step.action in ("rollback", "cancel"):
                how = self._stop(opts.asg, step.action)
                acted_at, settle = now, now + timedelta(seconds=opts.settle_timeout)
                self._notice("warning", f"release timed out: {opts.asg}",
                             f"refresh {refresh_id} {step.note} after {opts.timeout:.0f}s; {how}",
                             refresh_id=refresh_id)
                continue
            self.clock.sleep(opts.poll_interval)

    def _stop(self, group: str, how: str) -> str:
        try:
            self.aws.stop_refresh(group, how)
            return f"{how} requested"
        except ShipyardError as exc:
            code = exc.details.get("aws_code")
            if how == "rollback" and code == "IrreversibleInstanceRefresh":
                self.aws.stop_refresh(group, "cancel")
                return "rollback impossible (IrreversibleInstanceRefresh); cancel requested"
            if code == "ActiveInstanceRefreshNotFound":  # it ended between poll and call
                return f"{how} not needed: the refresh had ended"
            raise

    def prune_versions(self, template_id: str, keep: int) -> tuple[VersionPrunePlan, list[tuple[int, str]]]:
        template = self.aws.template(template_id)
        versions = [n for n, _ in self.aws.template_versions(template_id)]
        plan = plan_version_prune(versions, int(template["DefaultVersionNumber"]), keep,
                                  self.aws.versions_in_use(template))
        refused = self.aws.delete_versions(template_id, plan.delete) if plan.delete else []
        self._notice("success" if not refused else "warning",
                     f"launch template versions pruned: {template['LaunchTemplateName']}",
                     f"deleted {plan.delete or 'none'}; kept {sorted(plan.keep_versions)}"
                     + (f"; refused {refused}" if refused else ""),
                     deleted=plan.delete, refused=[f"v{v}: {c}" for v, c in refused])
        return plan, refused
