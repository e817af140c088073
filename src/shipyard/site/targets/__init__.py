"""Targets by kind: `s3://bucket[/prefix]` or a local folder (the embedded default)."""

from __future__ import annotations

from typing import Callable

from shipyard.settings import SiteSettings
from shipyard.site.targets.base import Served, Stored, Target
from shipyard.site.targets.local import FolderTarget
from shipyard.site.targets.s3 import S3Target

TARGETS: dict[str, Callable[[str, SiteSettings], Target]] = {
    "s3": lambda url, s: S3Target(url, workers=s.workers, multipart_threshold_mb=s.multipart_threshold_mb),
    "folder": lambda url, s: FolderTarget(url),
}


def kind_of(url: str) -> str:
    return "s3" if url.startswith("s3://") else "folder"


def open_target(url: str, settings: SiteSettings) -> Target:
    return TARGETS[kind_of(url)](url, settings)


__all__ = ["TARGETS", "FolderTarget", "S3Target", "Served", "Stored", "Target", "kind_of", "open_target"]
