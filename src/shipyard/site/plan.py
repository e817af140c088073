"""Pure decisions of `shipyard site`: what to upload, delete and invalidate. No I/O here.

- A file is unchanged when the remote object's MD5 equals the MD5 of what would be uploaded:
  its ETag, or for an ETag that is not an MD5 (multipart uploads; SSE-KMS buckets) the body MD5
  the last release recorded next to that same ETag, else the `shipyard-md5` metadata; and
  its headers are those the last release recorded (a changed Cache-Control rule re-uploads).
- Invalidation paths are URL paths, each once; `dir/index.html` is also `/dir/` (the URL people
  use). Past `threshold` they are collapsed into directory wildcards, then into one `/*`:
  CloudFront charges per path past 1,000 a month, a wildcard counts as one, and at most 15
  wildcard paths may be in progress at once
  (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/Invalidation.html).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Mapping
from urllib.parse import quote

from shipyard.site.model import (
    PREVIEWS_DIR,
    RESERVED_PREFIXES,
    LocalFile,
    Release,
    ReleaseFile,
    RemoteObject,
)

MAX_WILDCARDS_IN_PROGRESS = 15


@dataclass
class DeployPlan:
    uploads: list[LocalFile] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    new: set[str] = field(default_factory=set)

    @property
    def changed_keys(self) -> list[str]:
        return sorted([f.key for f in self.uploads] + self.deletes)

    def render(self) -> list[str]:
        lines = [f"{'add' if f.key in self.new else 'update'} {f.key}" for f in self.uploads]
        lines += [f"delete {k}" for k in self.deletes]
        lines.append(f"{len(self.unchanged)} unchanged")
        return lines


def managed(key: str, *, at_root: bool) -> bool:
    """Keys a deploy owns: never release manifests; at the root, never branches' previews."""
    if key.startswith(RESERVED_PREFIXES):
        return False
    return not (at_root and key.startswith(PREVIEWS_DIR + "/"))


def plan_deploy(local: Iterable[LocalFile], remote: Mapping[str, RemoteObject], *,
                delete: bool = True, previous: Release | None = None,
                at_root: bool = True) -> DeployPlan:
    plan = DeployPlan()
    seen: set[str] = set()
    for f in sorted(local, key=lambda f: f.key):
        seen.add(f.key)
        obj = remote.get(f.key)
        if obj is None:
            plan.uploads.append(f)
            plan.new.add(f.key)
            continue
        before = previous.files.get(f.key) if previous else None
        same_headers = before is None or before.headers() == f.headers
        if obj.md5_given(before) == f.body_md5 and same_headers:
            plan.unchanged.append(f.key)
        else:
            plan.uploads.append(f)
    if delete:
        plan.deletes = sorted(k for k in remote if k not in seen and managed(k, at_root=at_root))
    return plan


@dataclass
class RestorePlan:
    """What makes the remote file set exactly a release's: re-put or delete."""

    restores: list[tuple[str, ReleaseFile]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed_keys(self) -> list[str]:
        return sorted([k for k, _ in self.restores] + self.deletes)


def plan_restore(release: Release, remote: Mapping[str, RemoteObject], *,
                 at_root: bool = True) -> RestorePlan:
    plan = RestorePlan()
    for key, rf in sorted(release.files.items()):
        obj = remote.get(key)
        if obj is not None and obj.md5_given(rf) == rf.body_md5:
            plan.unchanged.append(key)
        else:
            plan.restores.append((key, rf))
    plan.deletes = sorted(k for k in remote if k not in release.files and managed(k, at_root=at_root))
    return plan


def url_path(key: str, url_prefix: str = "/") -> str:
    """The URL path of `key`, percent-encoded (CloudFront wants encoded paths; a literal `*`
    in a file name must not become a wildcard)."""
    return url_prefix + quote(key, safe="/-_.~")


def invalidation_paths(keys: Iterable[str], *, url_prefix: str = "/", threshold: int = 10) -> list[str]:
    """The URL paths to invalidate for changed `keys`, each once, collapsed past `threshold`."""
    if not url_prefix.endswith("/"):
        url_prefix += "/"
    paths: set[str] = set()
    for key in keys:
        paths.add(url_path(key, url_prefix))
        head, _, name = key.rpartition("/")
        if name == "index.html":
            paths.add(url_path(head + "/", url_prefix) if head else url_prefix)
    found = sorted(paths)
    if len(found) <= threshold:
        return found
    rel = [p[len(url_prefix):].split("/") for p in found]
    deepest = max(len(parts) for parts in rel)
    # Shallower and shallower: paths deeper than `depth` folders become `<folders>/*`.
    for depth in range(deepest - 1, 0, -1):
        collapsed = sorted({url_prefix + "/".join(parts[:depth]) + "/*" if len(parts) > depth
                            else url_prefix + "/".join(parts) for parts in rel})
        wildcards = sum(p.endswith("*") for p in collapsed)
        if len(collapsed) <= threshold and wildcards <= MAX_WILDCARDS_IN_PROGRESS:
            return collapsed
    return [url_prefix + "*"]


def release_id(now: datetime, files: Mapping[str, ReleaseFile]) -> str:
    """Sortable (to the millisecond) and content-addressed: `20261130T170102.345Z-1a2b3c4d`."""
    h = hashlib.sha256()
    for key in sorted(files):
        h.update(f"{key}\0{files[key].body_md5}\n".encode())
    utc = now.astimezone(timezone.utc)
    return f"{utc:%Y%m%dT%H%M%S}.{utc.microsecond // 1000:03d}Z-{h.hexdigest()[:8]}"
