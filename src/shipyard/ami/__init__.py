"""ami: immutable releases. Packer bakes an AMI per build; old images and launch-template
versions are pruned without touching what is in use; an instance refresh rolls the newest image
out to an Auto Scaling group and rolls back when it fails.

Layers: `model` (data) <- `plan` (pure decisions) <- `aws` (the only AWS caller) <- `runner`
(executes, notifies) <- `cli`. `standin` stands in for the AWS calls moto lacks (demo, tests).
"""

from shipyard.ami.model import Image, Outcome, RefreshStatus, ReleaseOptions
from shipyard.ami.plan import (
    ImagePrunePlan,
    VersionPrunePlan,
    newest_first,
    plan_image_prune,
    plan_version_prune,
    refresh_step,
)

__all__ = ["Image", "Outcome", "RefreshStatus", "ReleaseOptions", "ImagePrunePlan",
           "VersionPrunePlan", "newest_first", "plan_image_prune", "plan_version_prune",
           "refresh_step"]
