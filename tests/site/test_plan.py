"""The pure parts of shipyard.site: diff, invalidation paths and collapsing, headers, names."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shipyard.errors import InputError, ShipyardError
from shipyard.settings import SiteHeaderRule, SiteSettings, get_settings
from shipyard.site.cdn import wait_until_completed
from shipyard.site.model import (
    Headers,
    LocalFile,
    Release,
    ReleaseFile,
    RemoteObject,
    cache_control,
    content_type,
    sanitize_branch,
)
from shipyard.site.plan import invalidation_paths, plan_deploy, plan_restore, release_id
from tests.site.conftest import EXAMPLE

S = SiteSettings()
HTML = Headers("text/html; charset=utf-8", "no-cache")


def local(key: str, md5: str, headers: Headers = HTML) -> LocalFile:
    return LocalFile(key, f"/src/{key}", 10, md5, md5, headers)


def remote(key: str, etag: str, body_md5: str | None = None) -> RemoteObject:
    return RemoteObject(key, etag, 10, body_md5)


def rfile(md5: str, headers: Headers = HTML) -> ReleaseFile:
    return ReleaseFile(md5=md5, body_md5=md5, size=10, content_type=headers.content_type,
                       cache_control=headers.cache_control, content_encoding=headers.content_encoding)


def test_diff_uploads_new_and_changed_deletes_gone_keeps_same():
    plan = plan_deploy([local("a.html", "1"), local("b.html", "2"), local("new.html", "3")],
                       {"a.html": remote("a.html", "1"), "b.html": remote("b.html", "old"),
                        "gone.html": remote("gone.html", "9")})
    assert [f.key for f in plan.uploads] == ["b.html", "new.html"]
    assert plan.new == {"new.html"}
    assert plan.unchanged == ["a.html"]
    assert plan.deletes == ["gone.html"]
    assert plan.render() == ["update b.html", "add new.html", "delete gone.html", "1 unchanged"]


def test_keep_deletes_nothing():
    plan = plan_deploy([local("a.html", "1")], {"gone.html": remote("gone.html", "9")}, delete=False)
    assert plan.deletes == []


def test_multipart_etag_is_compared_through_the_stored_hash():
    # A multipart ETag ('md5-N') is never an MD5: without the stored hash the file is re-uploaded.
    same = plan_deploy([local("big.bin", "abc")], {"big.bin": remote("big.bin", "ffff-3", body_md5="abc")})
    unknown = plan_deploy([local("big.bin", "abc")], {"big.bin": remote("big.bin", "ffff-3")})
    assert same.unchanged == ["big.bin"] and not same.uploads
    assert [f.key for f in unknown.uploads] == ["big.bin"]


def test_an_etag_that_is_not_an_md5_is_trusted_when_the_last_release_recorded_it():
    # SSE-KMS and multipart ETags are not MD5s: the release's record of the same ETag is.
    before = Release(id="r1", time="t", files={"a.html": rfile("1").model_copy(update={"etag": "kms-opaque"})})
    same = plan_deploy([local("a.html", "1")], {"a.html": remote("a.html", "kms-opaque")}, previous=before)
    moved = plan_deploy([local("a.html", "1")], {"a.html": remote("a.html", "other-opaque")}, previous=before)
    assert same.unchanged == ["a.html"]
    assert [f.key for f in moved.uploads] == ["a.html"]


def test_changed_header_rule_reuploads_same_bytes():
    before = Release(id="r1", time="t", files={"a.css": rfile("1", Headers("text/css; charset=utf-8", "public, max-age=60"))})
    now = Headers("text/css; charset=utf-8", "public, max-age=3600")
    plan = plan_deploy([local("a.css", "1", now)], {"a.css": remote("a.css", "1")}, previous=before)
    assert [f.key for f in plan.uploads] == ["a.css"]


def test_root_deploy_never_deletes_previews_or_manifests():
    remote_objs = {"previews/x/index.html": remote("previews/x/index.html", "1"),
                   ".shipyard/releases/r.json": remote(".shipyard/releases/r.json", "2"),
                   "old.html": remote("old.html", "3")}
    assert plan_deploy([], remote_objs).deletes == ["old.html"]
    # inside a preview prefix, a folder called previews/ is the site's own
    assert plan_deploy([], {"previews/a.html": remote("previews/a.html", "1")}, at_root=False).deletes == ["previews/a.html"]


def test_invalidation_each_path_once_and_index_as_directory():
    paths = invalidation_paths(["index.html", "docs/index.html", "docs/index.html", "a b/c*.js"])
    assert paths == ["/", "/a%20b/c%2A.js", "/docs/", "/docs/index.html", "/index.html"]


def test_invalidation_under_a_preview_prefix():
    assert invalidation_paths(["index.html"], url_prefix="/previews/feat") == ["/previews/feat/", "/previews/feat/index.html"]


def test_invalidation_collapses_to_directory_wildcards_then_everything():
    many_in_one_dir = [f"assets/img/{i}.png" for i in range(40)] + ["index.html"]
    assert invalidation_paths(many_in_one_dir, threshold=10) == ["/", "/assets/img/*", "/index.html"]
    spread = [f"d{i}/x.js" for i in range(40)]
    assert invalidation_paths(spread, threshold=10) == ["/*"]
    # at most 15 wildcards may be in progress: 20 folders never become 20 wildcards
    twenty = [f"d{i}/a/x.js" for i in range(20)] + [f"d{i}/a/y.js" for i in range(20)]
    assert invalidation_paths(twenty, threshold=30) == ["/*"]
    assert invalidation_paths([f"p{i}.html" for i in range(11)], threshold=10) == ["/*"]
    assert len(invalidation_paths([f"p{i}.html" for i in range(10)], threshold=10)) == 10


def test_restore_plan_puts_back_what_differs_and_deletes_extras():
    rel = Release(id="r1", time="t", files={"a.html": rfile("1"), "b.html": rfile("2")})
    plan = plan_restore(rel, {"a.html": remote("a.html", "1"), "b.html": remote("b.html", "changed"),
                              "new.html": remote("new.html", "3"),
                              "previews/x/i.html": remote("previews/x/i.html", "4")})
    assert [k for k, _ in plan.restores] == ["b.html"]
    assert plan.deletes == ["new.html"]
    assert plan.changed_keys == ["b.html", "new.html"]


def test_content_type_has_charset_for_text_only():
    assert content_type("index.html") == "text/html; charset=utf-8"
    assert content_type("a/app.3f9a1c.js") == "text/javascript; charset=utf-8"
    assert content_type("data.json") == "application/json; charset=utf-8"
    assert content_type("logo.svg") == "image/svg+xml; charset=utf-8"
    assert content_type("photo.png") == "image/png"
    assert content_type("font.woff2") == "font/woff2"
    assert content_type("LICENSE") == "application/octet-stream"


def test_cache_control_rules():
    assert cache_control("index.html", S) == "no-cache"
    assert cache_control("docs/index.html", S) == "no-cache"
    assert cache_control("assets/app.3f9a1c.js", S) == "public, max-age=31536000, immutable"
    assert cache_control("assets/index-B2xW3k9a.css", S) == "public, max-age=31536000, immutable"
    # words are not hashes: these would be stale for a year if taken for fingerprints
    for name in ("settings.js", "js/analytics.js", "facade.css", "deadbeef.js"):
        assert cache_control(name, S) == "public, max-age=3600", name
    custom = SiteSettings(headers=[SiteHeaderRule(match="*.pdf", cache_control="max-age=60")])
    assert cache_control("docs/a.pdf", custom) == "max-age=60"
    assert cache_control("index.html", custom) == "no-cache"  # no rule matches: never cached


def test_site_settings_forbid_unknown_keys():
    with pytest.raises(ValueError, match="extra"):
        SiteSettings(invalidation_treshold=5)


def test_branch_names_are_sanitized():
    assert sanitize_branch("feature/Login_v2") == "feature-login-v2"
    assert sanitize_branch("../../etc") == "etc"
    assert len(sanitize_branch("x" * 200)) == 63
    with pytest.raises(InputError, match="no letters or digits"):
        sanitize_branch("///")


def test_release_id_is_sortable_and_content_addressed():
    t = datetime(2026, 11, 30, 17, 1, 2, tzinfo=timezone.utc)
    a = release_id(t, {"a": rfile("1")})
    assert a.startswith("20261130T170102.000Z-")
    assert a == release_id(t, {"a": rfile("1")}) != release_id(t, {"a": rfile("2")})


def test_wait_until_completed_polls_then_times_out():
    seen: list[str] = []
    states = iter(["InProgress", "InProgress", "Completed"])
    clock = iter(range(100))
    waited = wait_until_completed(lambda: next(states), timeout=60, clock=lambda: next(clock),
                                  sleep=lambda s: None, on_tick=lambda s, t: seen.append(s))
    assert seen == ["InProgress", "InProgress", "Completed"] and waited > 0
    clock2 = iter(range(0, 1000, 10))
    with pytest.raises(ShipyardError, match="still InProgress"):
        wait_until_completed(lambda: "InProgress", timeout=30, clock=lambda: next(clock2), sleep=lambda s: None)


def test_the_example_settings_load(monkeypatch):
    monkeypatch.setenv("SHIPYARD_CONFIG", str(EXAMPLE.parent / "shipyard.toml"))
    site = get_settings(fresh=True).site
    assert site.distribution == "E2QWRUHAPOMQZL" and site.compress == "gzip"
    assert cache_control("sw.js", site) == "no-cache"
    assert cache_control("img/logo.png", site) == "public, max-age=600"
