"""Runs site plans: deploy, rollback, cleanup, releases. The nine manual steps, in order:

1. every check that can fail (folder, bucket, distribution, versioning) before any change;
2. upload what changed, assets first and HTML last (a page never links an asset not yet there),
   in parallel over one shared client; then delete what is gone;
3. write the release manifest; invalidate the changed paths; wait; verify through the site URL;
4. for a preview, post its URL through the notifier.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, TypeVar

from shipyard.errors import InputError, NotFoundError, ShipyardError, did_you_mean
from shipyard.notify import Notice, get_notifier
from shipyard.settings import SiteSettings, get_settings
from shipyard.site.cdn import CloudFront, wait_until_completed
from shipyard.site.model import PREVIEWS_DIR, RELEASES_DIR, LocalFile, RemoteObject, Release, ReleaseFile, Summary, preview_prefix, sanitize_branch
from shipyard.site.plan import invalidation_paths, plan_deploy, plan_restore, release_id
from shipyard.site.source import check_folder, scan
from shipyard.site.targets import FolderTarget, S3Target, Stored, Target, open_target
from shipyard.site.verify import verify

# (phase, done, total): the CLI draws it as a progress bar.
Progress = Callable[[str, int, int], None]
T = TypeVar("T")


@dataclass
class Site:
    """A target plus, optionally, the CloudFront distribution in front of it."""

    target: Target
    settings: SiteSettings
    cdn: CloudFront | None = None
    branch: str | None = None

    @property
    def prefix(self) -> str:
        return preview_prefix(self.branch) if self.branch else ""

    @property
    def releases_dir(self) -> str:
        return f"{RELEASES_DIR}/{self.prefix}"

    def url_prefix(self) -> str:
        if self.cdn is None:
            return "/" + self.prefix
        bucket = self.target.bucket if isinstance(self.target, S3Target) else None
        key_prefix = self.target.prefix if isinstance(self.target, S3Target) else ""
        return self.cdn.url_prefix(bucket, key_prefix + self.prefix)

    def site_url(self, override: str | None = None) -> str | None:
        if self.branch and self.settings.preview_url and not override:
            return self.settings.preview_url.format(branch=sanitize_branch(self.branch))
        base = override or self.settings.url
        if base is None and self.cdn is not None and self.cdn.domain():
            base = f"https://{self.cdn.domain()}"
        return base.rstrip("/") + self.url_prefix() if base else None


def open_site(to: str, *, distribution: str | None = None, branch: str | None = None,
              settings: SiteSettings | None = None) -> Site:
    """Everything that can fail on a name, checked before any change."""
    settings = settings or get_settings().site
    if branch is not None:
        sanitize_branch(branch)
    target = open_target(to, settings)
    target.check()
    dist = distribution or settings.distribution
    cdn = CloudFront(dist) if dist else None
    site = Site(target, settings, cdn, branch)
    if cdn is not None:
        site.url_prefix()  # reads the distribution: a wrong id fails here
    return site


def releases(site: Site, *, last: int | None = None) -> list[Release]:
    """The releases, oldest first (ids sort by time); `last=1` reads only the newest manifest."""
    keys = sorted(site.target.list_text(site.releases_dir))
    out = []
    for key in keys[-last:] if last else keys:
        text = site.target.read_text(key)
        if text:
            out.append(Release.model_validate_json(text))
    return out


def _remote(site: Site) -> dict[str, RemoteObject]:
    """The deploy's objects, keyed relative to its prefix; manifests and (at the root) the
    previews of branches are not listed at all."""
    exclude = (".shipyard/",) if site.branch else (".shipyard/", f"{PREVIEWS_DIR}/")
    return {k[len(site.prefix):]: o for k, o in site.target.list(site.prefix, exclude).items()}


def _save(site: Site, release: Release) -> None:
    site.target.write_text(f"{site.releases_dir}{release.id}.json", release.model_dump_json(indent=1))


def _parallel(fn: Callable[[T], object], items: list[T], workers: int, phase: str,
              progress: Progress | None) -> list[object]:
    """`fn` over `items` on a thread pool, results in order; the first failure cancels what
    has not started and is raised. Progress at most every 0.1 s (a bar redraw per file of
    5,000 would cost more than the uploads)."""
    results: list[object] = [None] * len(items)
    if not items:
        return results
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        shown = 0.0
        try:
            for done, fut in enumerate(as_completed(futures), 1):
                results[futures[fut]] = fut.result()
                if progress and (done == len(items) or time.monotonic() - shown > 0.1):
                    shown = time.monotonic()
                    progress(phase, done, len(items))
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return results


def git_sha(directory: str) -> str | None:
    if os.environ.get("GITHUB_SHA"):
        return os.environ["GITHUB_SHA"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _invalidate_and_verify(site: Site, summary: Summary, changed: list[str],
                           expected: list[tuple[str, str]], caller_ref: str, *,
                           url: str | None, check: bool, progress: Progress | None) -> None:
    if site.cdn is not None and changed:
        paths = invalidation_paths(changed, url_prefix=site.url_prefix(),
                                   threshold=site.settings.invalidation_threshold)
        summary.invalidation_paths = paths
        summary.invalidation_id = site.cdn.invalidate(paths, caller_ref)
        inv = summary.invalidation_id
        wait_until_completed(lambda: site.cdn.status(inv), timeout=site.settings.wait_timeout,  # type: ignore[union-attr]
                             on_tick=(lambda s, t: progress(f"invalidation {s}", int(t), 0)) if progress else None)
    summary.url = site.site_url(url)
    if check and summary.url and expected:
        summary.verified = verify(summary.url, expected,
                                  progress=(lambda i: progress("verify", i, len(expected))) if progress else None)


def deploy(directory: str, to: str, *, distribution: str | None = None, branch: str | None = None,
           delete: bool = True, dry_run: bool = False, url: str | None = None, check: bool = True,
           now: datetime | None = None, progress: Progress | None = None,
           settings: SiteSettings | None = None) -> Summary:
    started = time.monotonic()
    settings = settings or get_settings().site
    source = check_folder(directory)  # a missing folder fails before anything else
    site = open_site(to, distribution=distribution, branch=branch, settings=settings)
    if isinstance(site.target, FolderTarget):
        bucket = site.target.root.resolve()
        if bucket == source or source in bucket.parents or bucket in source.parents:
            raise InputError(f"the site folder {source} and the target {bucket} overlap",
                             hint="deploy to a folder outside the site folder (e.g. ./site-bucket)")
    # The remote listing and the local hashing overlap: both take seconds on a large site.
    with ThreadPoolExecutor(max_workers=2) as pool:
        listing = pool.submit(_remote, site)
        past = pool.submit(releases, site, last=1)
        files, skipped = scan(directory, settings)
        remote, history = listing.result(), past.result()
    summary = Summary(target=site.target.url, skipped=skipped, dry_run=dry_run)
    previous = history[-1] if history else None
    plan = plan_deploy(files, remote, delete=delete, previous=previous, at_root=branch is None)
    summary.unchanged = len(plan.unchanged)
    summary.uploaded = [f.key for f in plan.uploads]
    summary.deleted = list(plan.deletes)
    if dry_run:
        if site.cdn is not None:
            summary.invalidation_paths = invalidation_paths(plan.changed_keys, url_prefix=site.url_prefix(),
                                                            threshold=settings.invalidation_threshold)
        summary.seconds = time.monotonic() - started
        return summary
    why_not = site.target.can_restore() if plan.uploads else None
    if why_not:
        summary.warnings.append(f"{why_not}: this release cannot be rolled back to (docs/site.md)")
    # Assets first, HTML last: a visitor never gets a page whose new asset is not there yet.
    ordered = sorted(plan.uploads, key=lambda f: (f.key.endswith((".html", ".htm")), f.key))
    stored = _parallel(lambda f: site.target.put(site.prefix + f.key, f), ordered, settings.workers,
                         "upload", progress)
    written = {f.key: s for f, s in zip(ordered, stored) if isinstance(s, Stored)}
    if plan.deletes:
        site.target.delete([site.prefix + k for k in plan.deletes])
        if previous is None:
            summary.warnings.append(f"first deploy here: deleted {len(plan.deletes)} objects that "
                                    "predate shipyard (use --dry-run first, --keep to keep them)")
    if previous is not None and not plan.uploads and not plan.deletes:
        summary.release = previous.id  # nothing changed: the live release is still the last one
        summary.url = site.site_url(url)
        summary.seconds = time.monotonic() - started
        return summary
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    manifest = {f.key: _release_file(f, written.get(f.key), remote.get(f.key), previous) for f in files}
    release = Release(id=release_id(moment, manifest), time=moment.isoformat(timespec="milliseconds"),
                      git_sha=git_sha(directory), branch=branch, prefix=site.prefix,
                      source=os.path.abspath(directory), files=manifest,
                      uploaded=len(plan.uploads), deleted=len(plan.deletes))
    summary.release = release.id
    _save(site, release)
    _invalidate_and_verify(site, summary, plan.changed_keys, [(f.key, f.md5) for f in plan.uploads],
                           release.id, url=url, check=check, progress=progress)
    if summary.invalidation_id:
        release.invalidation_id = summary.invalidation_id
        _save(site, release)
    if branch:
        _notify_preview(site, branch, summary)
    summary.seconds = time.monotonic() - started
    return summary


def _release_file(f: LocalFile, written: Stored | None, listed: RemoteObject | None,
                  previous: Release | None) -> ReleaseFile:
    """A file's record: the version and ETag its upload left, or for an unchanged file the
    listed ETag and the version the last release recorded."""
    if written is not None:
        version, etag = written.version, written.etag
    else:
        before = previous.files.get(f.key) if previous else None
        version = before.version if before is not None and before.body_md5 == f.body_md5 else None
        etag = listed.etag if listed is not None else None
    h = f.headers
    return ReleaseFile(md5=f.md5, body_md5=f.body_md5, size=f.size, content_type=h.content_type,
                       cache_control=h.cache_control, content_encoding=h.content_encoding,
                       version=version, etag=etag)


def _notify_preview(site: Site, branch: str, summary: Summary) -> None:
    where = summary.url or f"{site.target.url.rstrip('/')}/{site.prefix}"
    get_notifier().send(Notice(
        tool="site", level="success", channel=site.settings.channel,
        title=f"preview of {branch} deployed", message=where,
        fields={"branch": branch, "url": where, "release": summary.release,
                "uploaded": len(summary.uploaded), "deleted": len(summary.deleted),
                "invalidation_id": summary.invalidation_id}))


def rollback(to: str, release: str, *, distribution: str | None = None, branch: str | None = None,
             url: str | None = None, check: bool = True, now: datetime | None = None,
             progress: Progress | None = None, settings: SiteSettings | None = None) -> Summary:
    started = time.monotonic()
    site = open_site(to, distribution=distribution, branch=branch, settings=settings)
    history = releases(site)
    wanted = next((r for r in history if r.id == release), None)
    if wanted is None:
        close = did_you_mean(release, [r.id for r in history], cutoff=0.5)
        raise NotFoundError(f"no release {release!r} in {site.target.url}{site.releases_dir}",
                            hint=close or "`shipyard site releases --to ...` lists them")
    why_not = site.target.can_restore()
    if why_not:
        raise ShipyardError(f"cannot roll back: {why_not}",
                            hint="enable versioning on the bucket (docs/site.md); later deploys can be rolled back")
    remote = _remote(site)
    plan = plan_restore(wanted, remote, at_root=branch is None)
    summary = Summary(target=site.target.url, unchanged=len(plan.unchanged),
                      uploaded=[k for k, _ in plan.restores], deleted=list(plan.deletes))
    ordered = sorted(plan.restores, key=lambda kv: (kv[0].endswith((".html", ".htm")), kv[0]))
    stored = _parallel(lambda kv: site.target.restore(site.prefix + kv[0], kv[1]), ordered,
                         site.settings.workers, "restore", progress)
    if plan.deletes:
        site.target.delete([site.prefix + k for k in plan.deletes])
    files = dict(wanted.files)
    for (key, rf), done in zip(ordered, stored):
        if isinstance(done, Stored):
            files[key] = rf.model_copy(update={"version": done.version or rf.version, "etag": done.etag})
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    new = wanted.model_copy(update={"id": release_id(moment, files) + "-rb", "time": moment.isoformat(timespec="milliseconds"),
                                    "files": files, "uploaded": len(ordered), "deleted": len(plan.deletes),
                                    "rollback_of": wanted.id, "invalidation_id": None})
    summary.release = new.id
    _save(site, new)
    _invalidate_and_verify(site, summary, plan.changed_keys, [(k, rf.md5) for k, rf in plan.restores],
                           new.id, url=url, check=check, progress=progress)
    if summary.invalidation_id:
        _save(site, new.model_copy(update={"invalidation_id": summary.invalidation_id}))
    summary.seconds = time.monotonic() - started
    return summary


def cleanup(to: str, branch: str, *, distribution: str | None = None, progress: Progress | None = None,
            settings: SiteSettings | None = None) -> Summary:
    """Remove a branch's preview: its files, its release manifests, its cached paths."""
    site = open_site(to, distribution=distribution, branch=branch, settings=settings)
    keys = sorted(site.target.list(site.prefix))
    manifests = sorted(site.target.list(site.releases_dir))
    summary = Summary(target=site.target.url, deleted=[k[len(site.prefix):] for k in keys])
    if not keys and not manifests:
        raise NotFoundError(f"no preview of branch {branch!r} in {site.target.url}",
                            hint="`shipyard site releases --to ... --branch B` shows what exists")
    site.target.delete(keys + manifests)
    if progress:
        progress("delete", len(keys), len(keys))
    if site.cdn is not None and keys:
        prefix = site.url_prefix()
        summary.invalidation_paths = [prefix + "*"]
        summary.invalidation_id = site.cdn.invalidate(summary.invalidation_paths, f"cleanup-{site.prefix}{time.time_ns()}")
        inv = summary.invalidation_id
        wait_until_completed(lambda: site.cdn.status(inv), timeout=site.settings.wait_timeout)  # type: ignore[union-attr]
    get_notifier().send(Notice(tool="site", level="info", channel=site.settings.channel,
                               title=f"preview of {branch} removed",
                               message=f"{len(keys)} files deleted from {site.target.url}{site.prefix}",
                               fields={"branch": branch, "deleted": len(keys)}))
    return summary


def release_rows(history: Iterable[Release]) -> list[list[object]]:
    return [[r.id, r.time, (r.git_sha or "")[:10], len(r.files), r.uploaded, r.deleted,
             r.invalidation_id or "", r.rollback_of or ""] for r in history]


def to_json(summary: Summary) -> str:
    return json.dumps(summary.to_dict(), indent=2)
