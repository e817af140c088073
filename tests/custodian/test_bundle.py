"""validate (c7n's schema + our rules, file:line), sync (immutable bundles, current.json flip) and
loading the current bundle, on a folder and on S3 over HTTP; the ledger on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import replace

import pytest

from shipyard.custodian import RunOptions, check_dir, load_current, open_ledger, run_once, sync
from shipyard.custodian.decide import Finding
from shipyard.errors import InputError, TransientError
from shipyard.store import open_store


def test_c7n_schema_errors_name_file_line_and_suggest(policies):
    (policies / "bad.yml").write_text(
        "policies:\n"
        "  - name: ec2-typo\n"
        "    resource: aws.ec2\n"
        "    metadata: {severity: low, remediate: true}\n"
        "    actions:\n"
        "      - type: stopp\n")
    (policies / "bad2.yml").write_text(
        "policies:\n"
        "  - name: s3-typo\n"
        "    resource: aws.s3\n"
        "    metadata: {severity: low}\n"
        "    filters:\n"
        "      - type: global-grants\n"
        "      - type: global-grantz\n")
    checked = check_dir(policies)
    assert sorted(str(p) for p in checked.problems) == [
        f"{policies / 'bad.yml'}:6: policy ec2-typo: actions.0: {{'type': 'stopp'}} is not valid "
        "under any of the given schemas (fix: did you mean 'stop'?)",
        f"{policies / 'bad2.yml'}:7: policy s3-typo: filters.1: Policy: s3-typo is invalid: "
        "s3.filters Invalid filter type {'type': 'global-grantz'}"]
    (policies / "bad.yml").unlink()
    (policies / "bad2.yml").unlink()
    assert check_dir(policies).problems == []


def test_symlinks_are_refused(policies, tmp_path):
    (tmp_path / "outside.yml").write_text("policies: []\n")
    (policies / "link.yml").symlink_to(tmp_path / "outside.yml")
    with pytest.raises(InputError, match="not a regular file"):
        check_dir(policies)


def test_sync_publishes_an_immutable_bundle_then_flips_current(store_url, policies, tmp_path):
    first = sync(policies, store_url)
    assert first.bundle.startswith("sha256-") and first.uploaded and first.files == 2
    store = open_store(store_url)
    current = json.loads(store.open("current.json").read())
    assert current["bundle"] == first.bundle
    manifest = json.loads(store.open(f"bundles/{first.bundle}/manifest.json").read())
    assert sorted(manifest["files"]) == ["ec2.yml", "s3.yml"]
    assert manifest["policies"] == ["ec2-owner-tag", "s3-public-acl"]
    # the same content again: nothing uploaded, same bundle
    assert sync(policies, store_url).uploaded is False
    # a change is a new bundle; the old one stays as it was
    (policies / "ec2.yml").write_text((policies / "ec2.yml").read_text().replace("medium", "high"))
    second = sync(policies, store_url)
    assert second.bundle != first.bundle
    loaded = load_current(store_url, tmp_path / "work")
    assert loaded.bundle == second.bundle
    assert "severity: high" in (loaded.root / "ec2.yml").read_text()
    assert store.exists(f"bundles/{first.bundle}/ec2.yml")


def test_an_invalid_folder_uploads_nothing(store_url, policies):
    (policies / "s3.yml").write_text((policies / "s3.yml").read_text().replace("critical", "urgent"))
    with pytest.raises(InputError, match=r"s3.yml:\d+: policy s3-public-acl: metadata.severity"):
        sync(policies, store_url)
    assert list(open_store(store_url).list()) == []


def test_a_tampered_bundle_is_refused(policies, tmp_path):
    dest = tmp_path / "bucket"
    r = sync(policies, str(dest))
    (dest / "bundles" / r.bundle / "s3.yml").write_text("policies: []\n")
    with pytest.raises(InputError, match="does not match its manifest hash"):
        load_current(str(dest), tmp_path / "work")


def test_a_clean_git_checkout_is_named_by_its_commit(policies, tmp_path):
    git = lambda *a: subprocess.run(["git", "-C", str(policies), *a], check=True,  # noqa: E731
                                    capture_output=True, text=True).stdout.strip()
    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "p", "--allow-empty")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "policies")
    r = sync(policies, str(tmp_path / "bucket"))
    assert r.bundle == git("rev-parse", "HEAD")[:12]


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_ledger_round_trip(engine, request, tmp_path, pg_admin_url):
    if engine == "postgres":
        name = request.getfixturevalue("pg_database")
        url = pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    else:
        url = str(tmp_path / "l.sqlite")
    ledger = open_ledger(url)
    row = Finding("p", "arn:aws:s3:::b", "111111111111", "us-east-1", "aws.s3", "b", "high",
                  "open", 1.5, 2.5)
    ledger.save([row])
    ledger.save([replace(row, state="resolved", resolved_at=3.0)])
    ledger.save([Finding("q", "arn:x", "1", "r", "aws.ec2", "x", "low", "open", 1, 1)])
    assert ledger.load()[("p", "arn:aws:s3:::b")].state == "resolved"
    assert list(ledger.load(open_only=True)) == [("q", "arn:x")]
    ledger.record_run("r1", 1, 2, "b1", False, {"counts": {"new": 1}})
    assert ledger.runs()[0]["summary"] == {"counts": {"new": 1}}
    # the run lock: one holder; a crashed holder's lock expires
    assert ledger.acquire("a", now=0, ttl=10) and not ledger.acquire("b", now=5, ttl=10)
    assert ledger.acquire("b", now=11, ttl=10)
    ledger.release("b")
    assert ledger.acquire("c", now=12, ttl=10)
    ledger.close()


def test_overlapping_runs_are_refused_before_c7n_runs(policies, tmp_path):
    ledger = open_ledger()
    assert ledger.acquire("another-run", now=time.time(), ttl=3600)
    ledger.close()
    accounts = tmp_path / "accounts.yml"
    accounts.write_text("accounts:\n  - {account_id: '111111111111', name: a, "
                        "role: 'arn:aws:iam::111111111111:role/r'}\n")
    with pytest.raises(TransientError, match="another custodian run holds the ledger lock"):
        run_once(RunOptions(str(policies), accounts))
    assert not (tmp_path / "custodian-runs").exists()  # nothing ran, nothing was written
