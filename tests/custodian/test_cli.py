"""`shipyard custodian ...` as a user runs it: sync to S3, run from the current bundle with
outputs to S3, findings, plan --base for a pull request, and the --every loop stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from shipyard.cli import main
from shipyard.store import open_store

from tests.helpers import read_outbox, wait_for

from .conftest import EXAMPLES, in_account, write_accounts


def cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())


@pytest.mark.parametrize("cmd", [[], ["validate"], ["sync"], ["run"], ["findings"], ["plan"], ["demo"]])
def test_help(capsys, cmd):
    code, out, _ = cli(capsys, "custodian", *cmd, "--help")
    assert code == 0 and "Usage" in out


def test_validate(capsys, policies):
    code, out, _ = cli(capsys, "custodian", "validate", str(EXAMPLES))
    assert code == 0 and "2 policies in 2 files: valid" in out
    (policies / "ec2.yml").write_text((policies / "ec2.yml").read_text().replace("    metadata:\n      severity: medium\n", ""))
    code, _, err = cli(capsys, "custodian", "validate", str(policies))
    assert code == 2 and f"{policies / 'ec2.yml'}:2: policy ec2-owner-tag: metadata.severity" in err
    assert "Traceback" not in err


def test_sync_run_findings_from_s3(capsys, c7n_aws, s3_bucket, accounts, policies, tmp_path):
    account = accounts[0]
    bucket = f"cust-cli-{uuid.uuid4().hex[:8]}"
    in_account("s3", account).create_bucket(Bucket=bucket, ACL="public-read")
    code, out, err = cli(capsys, "custodian", "sync", "--from", str(policies), "--to", f"{s3_bucket}/policies")
    assert code == 0, err
    acc = write_accounts(tmp_path / "accounts.yml", [account])
    code, out, err = cli(capsys, "custodian", "run", "--policies", f"{s3_bucket}/policies",
                         "--accounts", str(acc), "--output", f"{s3_bucket}/runs", "--dryrun", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["dryrun"] and report["counts"]["new"] == 1
    assert report["changes"] == [{"kind": "new", "policy": "s3-public-acl",
                                  "arn": f"arn:aws:s3:::{bucket}", "severity": "critical"}]
    keys = [o.key for o in open_store(f"{s3_bucket}/runs").list()]
    run_id = report["run_id"]
    assert f"{run_id}/detect/acct0/us-east-1/s3-public-acl/resources.json" in keys
    assert f"{run_id}/summary.json" in keys
    code, out, _ = cli(capsys, "custodian", "findings", "--json")
    assert code == 0 and json.loads(out) == []  # a dry run records nothing


def _git(cwd, *args):
    return subprocess.run(["git", "-C", str(cwd), "-c", "user.email=t@t", "-c", "user.name=t", *args],
                          check=True, capture_output=True, text=True).stdout


def test_plan_dry_runs_only_changed_policies(capsys, c7n_aws, accounts, policies, tmp_path):
    account = accounts[0]
    in_account("ec2", account).run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "owner", "Value": "a"}]}])
    _git(policies, "init", "-q")
    _git(policies, "add", ".")
    _git(policies, "commit", "-qm", "policies")
    code, out, _ = cli(capsys, "custodian", "plan", str(policies), "--base", "HEAD")
    assert code == 0 and "no policy changed since HEAD" in out
    (policies / "ec2.yml").write_text((policies / "ec2.yml").read_text().replace('"tag:owner"', '"tag:team"'))
    acc = write_accounts(tmp_path / "accounts.yml", [account])
    code, out, err = cli(capsys, "custodian", "plan", str(policies), "--base", "HEAD", "--accounts",
                         str(acc), "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["changed"] == ["ec2-owner-tag"]  # the unchanged s3 policy is not run
    assert [(e["effect"], e["policy"], e["account"]) for e in plan["effects"]] == [
        ("would match", "ec2-owner-tag", account)]
    assert not os.path.exists("custodian-findings.sqlite") or json.loads(
        cli(capsys, "custodian", "findings", "--json")[1]) == []
    code, _, err = cli(capsys, "custodian", "plan", str(policies), "--base", "nope")
    assert code == 2 and "unknown git ref 'nope'" in err


def test_every_loop_stops_on_sigterm(c7n_aws, accounts, policies, tmp_path):
    acc = write_accounts(tmp_path / "accounts.yml", [accounts[1]])
    proc = subprocess.Popen([sys.executable, "-m", "shipyard.cli", "custodian", "run", "--policies",
                             str(policies), "--accounts", str(acc), "--every", "1h"],
                            cwd=tmp_path, env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        def one_run_done() -> bool:
            assert proc.poll() is None, proc.communicate()[1]
            return bool(list((tmp_path / "custodian-runs").glob("*/summary.json")))

        wait_for(one_run_done, timeout=120, interval=0.3, what="the first run of the loop")
        time.sleep(0.5)  # the loop is now waiting for the next hour
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped after 1 run(s)" in err


@pytest.mark.slow
def test_demo_needs_no_aws_account(tmp_path):
    """In its own process: the demo's in-process moto must not share the session server's
    backends (they are module globals)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["COLUMNS"] = "200"
    res = subprocess.run([sys.executable, "-m", "shipyard.cli", "custodian", "demo"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())
    assert "new 2, escalated 0, still failing 0, resolved 0; notices 2; Security Hub 2" in out
    assert "remediated 1" in out
    assert "new 0, escalated 0, still failing 1, resolved 1; notices 1" in out
    assert "shipyard-demo-public" in out and "ec2-owner-tag" in out
    notes = [n for n in read_outbox(tmp_path / "outbox.jsonl") if n["tool"] == "custodian"]
    assert [n["level"] for n in notes] == ["warning", "failure", "success"]
