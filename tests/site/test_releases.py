"""Releases, rollback, previews and cleanup, on moto's S3 + CloudFront and on a folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import boto3
import pytest

from shipyard.errors import NotFoundError, ShipyardError
from shipyard.settings import SiteSettings
from shipyard.site import cleanup, deploy, open_site, releases, rollback
from tests.site.conftest import invalidation_paths_of, serving

FAST = SiteSettings(workers=4)


def remote_md5s(bucket_url: str, prefix: str = "") -> dict[str, str]:
    s3 = boto3.client("s3")
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket_url[5:], Prefix=prefix):
        for o in page.get("Contents", []):
            if not o["Key"].startswith(".shipyard/"):
                out[o["Key"]] = o["ETag"].strip('"')
    return out


def local_md5s(folder: Path, prefix: str = "") -> dict[str, str]:
    return {prefix + p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_rollback_restores_exactly_the_release(site_dir, tmp_path, versioned_bucket, distribution):
    v1 = deploy(str(site_dir), versioned_bucket, distribution=distribution, check=False, settings=FAST)
    snapshot = local_md5s(site_dir)
    (site_dir / "index.html").write_text("<h1>v2</h1>")
    (site_dir / "404.html").unlink()
    (site_dir / "extra.txt").write_text("new in v2")
    deploy(str(site_dir), versioned_bucket, distribution=distribution, check=False, settings=FAST)
    assert remote_md5s(versioned_bucket) != snapshot

    with serving(versioned_bucket) as url:
        back = rollback(versioned_bucket, v1.release, distribution=distribution, url=url, settings=FAST)
    assert remote_md5s(versioned_bucket) == snapshot
    assert sorted(back.uploaded) == ["404.html", "index.html"] and back.deleted == ["extra.txt"]
    assert back.verified == 2
    assert invalidation_paths_of(distribution, back.invalidation_id) == ["/", "/404.html", "/extra.txt", "/index.html"]
    history = releases(open_site(versioned_bucket, settings=FAST))
    assert [r.rollback_of for r in history][-1] == v1.release
    assert history[-1].files == {k: v.model_copy(update={"version": history[-1].files[k].version})
                                 for k, v in history[0].files.items()}


def test_rollback_errors_name_the_fix(site_dir, versioned_bucket):
    first = deploy(str(site_dir), versioned_bucket, check=False, settings=FAST)
    with pytest.raises(NotFoundError, match="no release") as err:
        rollback(versioned_bucket, first.release[:-1] + "x", settings=FAST)
    assert first.release in (err.value.hint or "")  # did you mean
    s3_bucket = versioned_bucket + "-plain"
    boto3.client("s3").create_bucket(Bucket=s3_bucket[5:])
    unversioned = deploy(str(site_dir), s3_bucket, check=False, settings=FAST)
    assert any("no versioning" in w for w in unversioned.warnings)
    with pytest.raises(ShipyardError, match="no versioning"):
        rollback(s3_bucket, unversioned.release, settings=FAST)


def test_preview_per_branch_is_notified_kept_apart_and_cleaned_up(site_dir, tmp_path, versioned_bucket, distribution):
    settings = SiteSettings(workers=4, preview_url="https://preview.example.com/previews/{branch}/")
    deploy(str(site_dir), versioned_bucket, distribution=distribution, check=False, settings=settings)
    preview = deploy(str(site_dir), versioned_bucket, distribution=distribution, branch="feature/Login",
                     check=False, settings=settings)
    assert preview.url == "https://preview.example.com/previews/feature-login/"
    assert set(remote_md5s(versioned_bucket, "previews/")) == set(local_md5s(site_dir, "previews/feature-login/"))
    assert "/previews/feature-login/index.html" in invalidation_paths_of(distribution, preview.invalidation_id)
    notice = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()][-1]
    assert notice["tool"] == "site" and notice["message"] == preview.url
    assert notice["fields"]["branch"] == "feature/Login"

    # the main site's deploy with --delete leaves the previews alone; each keeps its own releases
    (site_dir / "index.html").write_text("<h1>main moved on</h1>")
    main = deploy(str(site_dir), versioned_bucket, distribution=distribution, check=False, settings=settings)
    assert main.deleted == [] and remote_md5s(versioned_bucket, "previews/")
    assert len(releases(open_site(versioned_bucket, branch="feature/Login", settings=settings))) == 1

    gone = cleanup(versioned_bucket, "feature/Login", distribution=distribution, settings=settings)
    assert len(gone.deleted) == 4
    assert remote_md5s(versioned_bucket, "previews/") == {}
    assert releases(open_site(versioned_bucket, branch="feature/Login", settings=settings)) == []
    assert invalidation_paths_of(distribution, gone.invalidation_id) == ["/previews/feature-login/*"]
    assert len(remote_md5s(versioned_bucket)) == 4  # the main site is untouched
    with pytest.raises(NotFoundError, match="no preview of branch"):
        cleanup(versioned_bucket, "feature/Login", settings=settings)


def test_folder_target_rollback_and_preview(site_dir, tmp_path):
    bucket = tmp_path / "site-bucket"
    v1 = deploy(str(site_dir), str(bucket), settings=FAST)
    before = local_md5s(site_dir)
    (site_dir / "index.html").write_text("<h1>v2</h1>")
    deploy(str(site_dir), str(bucket), settings=FAST)
    deploy(str(site_dir), str(bucket), branch="fix-1", settings=FAST)
    back = rollback(str(bucket), v1.release, settings=FAST)
    assert back.uploaded == ["index.html"]
    served = {k: v for k, v in local_md5s(bucket).items() if not k.startswith((".shipyard/", "previews/"))}
    assert served == before
    assert (bucket / "previews/fix-1/index.html").read_text() == "<h1>v2</h1>"
    cleanup(str(bucket), "fix-1", settings=FAST)
    assert not (bucket / "previews").exists()
