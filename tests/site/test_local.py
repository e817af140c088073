"""The local side and the embedded default: confinement of the source folder and the folder
target, `site serve`, the CLI, and the demo page in headless Chromium."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shipyard.cli import main
from shipyard.errors import InputError
from shipyard.settings import SiteSettings
from shipyard.site import deploy
from shipyard.site.demo import DEMO_SITE
from shipyard.site.source import scan
from shipyard.site.targets import FolderTarget
from tests.conftest import free_port
from tests.site.conftest import EXAMPLE, serving

CHROMIUM = "/usr/bin/chromium"
S = SiteSettings()


def shipyard(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`shipyard ARGS` in this process (a subprocess costs ~1.5 s of imports each)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_source_symlink_escape_is_refused_fifo_skipped(site_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not publish")
    (site_dir / "inside.html").symlink_to(site_dir / "index.html")
    (site_dir / "linked-dir").symlink_to(site_dir / "docs")
    os.mkfifo(site_dir / "pipe")
    files, skipped = scan(site_dir, S)
    keys = [f.key for f in files]
    assert "inside.html" in keys and "pipe" not in keys
    assert any(s.startswith("pipe (not a regular file") for s in skipped)
    assert any(s.startswith("linked-dir/") for s in skipped)
    (site_dir / "leak.txt").symlink_to(secret)
    with pytest.raises(InputError, match="outside the site folder"):
        deploy(str(site_dir), str(tmp_path / "bucket"), settings=S)
    assert not (tmp_path / "bucket").exists()  # refused before anything was written


def test_a_folder_that_is_not_a_site_target_is_never_emptied(site_dir, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    with pytest.raises(InputError, match="never deployed to"):
        deploy(str(site_dir), str(home), settings=S)
    assert (home / "thesis.tex").exists()


def test_target_folder_overlapping_the_site_is_refused(site_dir):
    with pytest.raises(InputError, match="overlap"):
        deploy(str(site_dir), str(site_dir / "bucket"), settings=S)
    with pytest.raises(InputError, match="overlap"):
        deploy(str(site_dir / "docs"), str(site_dir), settings=S)
    assert not (site_dir / "bucket").exists()


def test_folder_target_never_writes_through_a_link(site_dir, tmp_path):
    bucket = tmp_path / "bucket"
    deploy(str(site_dir), str(bucket), settings=S)
    shutil.rmtree(bucket / "docs")
    outside = tmp_path / "outside"
    outside.mkdir()
    (bucket / "docs").symlink_to(outside)  # someone planted a link in the target
    with pytest.raises(InputError, match="is a symlink"):
        deploy(str(site_dir), str(bucket), settings=S)
    assert list(outside.iterdir()) == []
    with pytest.raises(InputError, match="leave the site's root"):
        FolderTarget(bucket).write_text("../escape.json", "{}")


def test_serve_answers_with_the_deployed_headers_and_stays_confined(site_dir, tmp_path):
    bucket = tmp_path / "bucket"
    deploy(str(site_dir), str(bucket), settings=SiteSettings(compress="gzip"))
    with serving(str(bucket)) as url:
        page = httpx.get(url + "/")
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["cache-control"] == "no-cache"
        assert page.headers["content-encoding"] == "gzip" and "café" in page.text
        css = httpx.get(url + "/assets/app.3f9a1c7e.css")
        assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
        moved = httpx.get(url + "/docs")
        assert moved.status_code == 301 and moved.headers["location"] == "/docs/"
        missing = httpx.get(url + "/nope.html")
        assert missing.status_code == 404 and "Not found" in missing.text
        for probe in ("/.shipyard/releases/", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"):
            assert httpx.get(url + probe).status_code in (400, 404), probe
    with serving(str(site_dir)) as url:  # a built folder: headers from the rules
        assert httpx.get(url + "/docs/").headers["cache-control"] == "no-cache"


def test_cli_deploy_json_releases_and_errors(tmp_path):
    out = shipyard("site", "deploy", str(EXAMPLE), "--to", "./site-bucket", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert {"uploaded", "deleted", "unchanged", "invalidation_id", "release"} <= set(summary)
    assert summary["uploaded"] == 4 and summary["invalidation_id"] is None
    listed = shipyard("site", "releases", "./site-bucket", "--json", cwd=tmp_path)
    assert json.loads(listed.stdout)[0]["id"] == summary["release"]
    missing = shipyard("site", "deploy", "./nope", "--to", "./site-bucket", cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    bad = shipyard("site", "rollback", "./site-bucket", "--to", "nope", cwd=tmp_path)
    assert bad.returncode == 2 and "no release 'nope'" in bad.stderr
    schema = shipyard("site", "schema", "release", cwd=tmp_path)
    assert json.loads(schema.stdout)["additionalProperties"] is False
    wrong = shipyard("site", "schema", "relase", cwd=tmp_path)
    assert wrong.returncode == 2 and "did you mean 'release'" in wrong.stderr
    for cmd in ("deploy", "releases", "rollback", "cleanup", "serve", "demo", "schema"):
        assert shipyard("site", cmd, "--help", cwd=tmp_path).returncode == 0


def test_demo_site_is_the_example():
    packaged = {p.relative_to(DEMO_SITE).as_posix(): p.read_bytes() for p in DEMO_SITE.rglob("*") if p.is_file()}
    example = {p.relative_to(EXAMPLE).as_posix(): p.read_bytes() for p in EXAMPLE.rglob("*") if p.is_file()}
    assert packaged == example


def test_embedded_default_in_chromium(tmp_path):
    """`shipyard site demo`, then `site serve` of its bucket folder, loaded in headless Chromium."""
    from playwright.sync_api import sync_playwright  # heavy optional dev dependency

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make services` (scripts/ensure-services.sh)"
    demo = shipyard("site", "demo", "--json", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    runs = json.loads(demo.stdout)
    assert runs["first"]["uploaded"] == 4 and runs["second"]["uploaded"] == 0
    with serving(str(tmp_path / "site-demo" / "bucket")) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        try:
            page = browser.new_page()
            resp = page.goto(url + "/")
            assert resp is not None and resp.status == 200
            assert resp.headers["cache-control"] == "no-cache"
            assert page.inner_text("#title") == "Deployed by shipyard — café ready"  # charset right
            # the fingerprinted stylesheet loaded: its colour is applied
            color = page.eval_on_selector("h1", "e => getComputedStyle(e).color")
            assert color == "rgb(12, 90, 160)"
            page.click("#docs")
            page.wait_for_url(url + "/docs/")
            assert page.inner_text("#title") == "Docs"
        finally:
            browser.close()


def test_serve_stops_on_sigterm(tmp_path):
    """`shipyard site serve` as a service manager runs it: it answers, and SIGTERM stops it."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "shipyard.cli", "site", "serve", str(EXAMPLE), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
