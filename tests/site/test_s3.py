"""Deploys against moto's S3 and CloudFront over HTTP: diff, headers, deletes, invalidation,
verify, multipart, compression."""

from __future__ import annotations

import gzip
import hashlib

import httpx
import pytest

from shipyard.errors import InputError, NotFoundError, ShipyardError
from shipyard.settings import SiteSettings
from shipyard.site import deploy
from tests.site.conftest import create_distribution, invalidation_paths_of, serving, versions

FAST = SiteSettings(workers=4)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_first_deploy_headers_and_no_acl(site_dir, versioned_bucket, s3):
    summary = deploy(str(site_dir), versioned_bucket, settings=FAST)
    bucket = versioned_bucket[5:]
    assert sorted(summary.uploaded) == ["404.html", "assets/app.3f9a1c7e.css", "docs/index.html", "index.html"]
    page = s3.head_object(Bucket=bucket, Key="index.html")
    assert page["ContentType"] == "text/html; charset=utf-8"
    assert page["CacheControl"] == "no-cache"
    asset = s3.head_object(Bucket=bucket, Key="assets/app.3f9a1c7e.css")
    assert asset["ContentType"] == "text/css; charset=utf-8"
    assert asset["CacheControl"] == "public, max-age=31536000, immutable"
    assert asset["ETag"].strip('"') == md5((site_dir / "assets/app.3f9a1c7e.css").read_bytes())
    grants = s3.get_object_acl(Bucket=bucket, Key="index.html")["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]  # the owner only: no public ACL
    assert all("URI" not in g["Grantee"] for g in grants)


def test_redeploy_puts_only_what_changed_and_deletes_what_is_gone(site_dir, versioned_bucket, s3):
    first = deploy(str(site_dir), versioned_bucket, settings=FAST)
    again = deploy(str(site_dir), versioned_bucket, settings=FAST)
    assert again.uploaded == [] and again.deleted == [] and again.unchanged == 4
    assert again.release == first.release  # nothing changed, no new release
    assert len(versions(s3, versioned_bucket)) == 4  # 0 PUTs on the second deploy

    (site_dir / "docs/index.html").write_text("<h1>changed</h1>")
    (site_dir / "404.html").unlink()
    third = deploy(str(site_dir), versioned_bucket, settings=FAST)
    assert third.uploaded == ["docs/index.html"] and third.deleted == ["404.html"]
    assert len([v for v in versions(s3, versioned_bucket) if v["Key"] == "docs/index.html"]) == 2
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=versioned_bucket[5:])["Contents"]]
    assert "404.html" not in keys

    (site_dir / "index.html").unlink()
    kept = deploy(str(site_dir), versioned_bucket, delete=False, settings=FAST)
    assert kept.deleted == [] and s3.head_object(Bucket=versioned_bucket[5:], Key="index.html")


def test_dry_run_changes_nothing(site_dir, s3_bucket, s3):
    summary = deploy(str(site_dir), s3_bucket, dry_run=True, settings=FAST)
    assert summary.dry_run and len(summary.uploaded) == 4
    assert "Contents" not in s3.list_objects_v2(Bucket=s3_bucket[5:])


def test_invalidation_of_changed_paths_then_verify_through_the_site(site_dir, versioned_bucket, distribution):
    with serving(versioned_bucket) as url:
        first = deploy(str(site_dir), versioned_bucket, distribution=distribution, url=url, settings=FAST)
        assert first.verified == 4
        assert invalidation_paths_of(distribution, first.invalidation_id) == sorted(first.invalidation_paths) == [
            "/", "/404.html", "/assets/app.3f9a1c7e.css", "/docs/", "/docs/index.html", "/index.html"]
        (site_dir / "docs/index.html").write_text("<h1>new docs</h1>")
        second = deploy(str(site_dir), versioned_bucket, distribution=distribution, url=url, settings=FAST)
    assert invalidation_paths_of(distribution, second.invalidation_id) == ["/docs/", "/docs/index.html"]
    assert second.verified == 1


def test_invalidation_collapses_past_the_threshold(site_dir, versioned_bucket, distribution):
    for i in range(30):
        (site_dir / "img").mkdir(exist_ok=True)
        (site_dir / "img" / f"{i}.png").write_bytes(b"png %d" % i)
    summary = deploy(str(site_dir), versioned_bucket, distribution=distribution, check=False,
                     settings=SiteSettings(workers=4, invalidation_threshold=8))
    assert invalidation_paths_of(distribution, summary.invalidation_id) == [
        "/", "/404.html", "/assets/*", "/docs/*", "/img/*", "/index.html"]


def test_distribution_origin_path_maps_keys_to_urls(site_dir, versioned_bucket):
    dist = create_distribution(versioned_bucket[5:], origin_path="/www")
    summary = deploy(str(site_dir), versioned_bucket + "/www", distribution=dist, check=False, settings=FAST)
    assert "/index.html" in invalidation_paths_of(dist, summary.invalidation_id)
    with pytest.raises(InputError, match="serves /www"):
        deploy(str(site_dir), versioned_bucket + "/elsewhere", distribution=dist, check=False, settings=FAST)


def test_verify_fails_when_the_site_serves_other_content(site_dir, tmp_path, versioned_bucket):
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "index.html").write_text("<h1>old</h1>")
    with serving(str(stale)) as url, pytest.raises(ShipyardError, match="do not serve the new content"):
        deploy(str(site_dir), versioned_bucket, url=url, settings=FAST)


def test_bad_input_fails_before_any_change(site_dir, tmp_path, s3_bucket, s3):
    with pytest.raises(NotFoundError, match="does not exist or is not a folder"):
        deploy(str(tmp_path / "no-such-dir"), s3_bucket, settings=FAST)
    with pytest.raises(NotFoundError, match="bucket 'no-such-bucket-x1' does not exist"):
        deploy(str(site_dir), "s3://no-such-bucket-x1", settings=FAST)
    with pytest.raises(InputError, match="distribution 'E0NOSUCHDIST' does not exist"):
        deploy(str(site_dir), s3_bucket, distribution="E0NOSUCHDIST", settings=FAST)
    assert "Contents" not in s3.list_objects_v2(Bucket=s3_bucket[5:])  # nothing uploaded


def test_multipart_objects_compare_by_stored_hash(site_dir, versioned_bucket, s3):
    big = site_dir / "video.bin"
    big.write_bytes(b"\x01" * (6 << 20))
    settings = SiteSettings(workers=4, multipart_threshold_mb=5)
    deploy(str(site_dir), versioned_bucket, settings=settings)
    head = s3.head_object(Bucket=versioned_bucket[5:], Key="video.bin")
    assert "-" in head["ETag"]  # a multipart ETag, not an MD5
    assert head["Metadata"]["shipyard-md5"] == md5(big.read_bytes())
    again = deploy(str(site_dir), versioned_bucket, settings=settings)
    assert again.uploaded == []


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_precompressed_bodies_with_content_encoding(site_dir, versioned_bucket, s3, encoding):
    import brotli

    page = site_dir / "index.html"
    page.write_text(page.read_text() + "<!-- padding -->\n" * 100)
    settings = SiteSettings(workers=4, compress=encoding)
    with serving(versioned_bucket) as url:
        deploy(str(site_dir), versioned_bucket, url=url, settings=settings)  # verify decodes and compares
        resp = httpx.get(url + "/index.html", headers={"Accept-Encoding": "gzip, br"})
    obj = s3.get_object(Bucket=versioned_bucket[5:], Key="index.html")
    assert obj["ContentEncoding"] == encoding
    body = obj["Body"].read()
    plain = gzip.decompress(body) if encoding == "gzip" else brotli.decompress(body)
    assert plain == page.read_bytes()
    assert resp.headers["content-encoding"] == encoding
    # compression is deterministic: a redeploy uploads nothing
    assert deploy(str(site_dir), versioned_bucket, settings=settings).uploaded == []
