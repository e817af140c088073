"""End to end against moto's server: two accounts by assume-role, c7n-org, the ledger, notices,
Security Hub and remediation, through the same calls `shipyard custodian run` makes."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest

from shipyard.custodian import RunOptions, open_ledger, run_once
from shipyard.custodian.aws import handler
from shipyard.errors import InputError
from shipyard.store import open_store

from .conftest import custodian_notices, hub_findings, in_account, set_setting, write_accounts


def _acl_public(account: str, bucket: str) -> bool:
    grants = in_account("s3", account).get_bucket_acl(Bucket=bucket)["Grants"]
    return any("AllUsers" in g["Grantee"].get("URI", "") for g in grants)


@pytest.mark.slow
def test_two_accounts_new_rerun_fix_and_dryrun(c7n_aws, accounts, policies, tmp_path):
    tag = uuid.uuid4().hex[:8]
    buckets = {}
    instances = {}
    for a in accounts:
        buckets[a] = f"cust-pub-{tag}-{a}"
        in_account("s3", a).create_bucket(Bucket=buckets[a], ACL="public-read")
        in_account("s3", a).create_bucket(Bucket=f"cust-priv-{tag}-{a}")
        ec2 = in_account("ec2", a)
        instances[a] = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    opts = lambda **kw: RunOptions(str(policies), write_accounts(tmp_path / "accounts.yml", accounts),  # noqa: E731
                                   security_hub=True, **kw)

    # --dryrun: everything is found, nothing changes anywhere.
    dry = run_once(opts(dryrun=True))
    assert dry.counts["new"] == 4 and dry.remediation["would_act_on"] == 2
    assert custodian_notices() == []
    assert all(_acl_public(a, buckets[a]) for a in accounts)
    assert all(hub_findings(a) == {} for a in accounts)
    assert open_ledger().load() == {}

    # First run: one notice per policy (both accounts' resources grouped in it), one Security
    # Hub finding per resource in its own account, the public buckets remediated.
    first = run_once(opts())
    assert first.counts == {"new": 4, "escalated": 0, "still": 0, "resolved": 0, "retired": 0}
    notes = custodian_notices()
    assert sorted(n["fields"]["policy"] for n in notes) == ["ec2-owner-tag", "s3-public-acl"]
    s3_note = next(n for n in notes if n["fields"]["policy"] == "s3-public-acl")
    assert all(f"arn:aws:s3:::{buckets[a]}" in s3_note["message"] for a in accounts)
    for a in accounts:
        found = hub_findings(a)
        assert len(found) == 2, found.keys()
        assert {f["ProductArn"] for f in found.values()} == {
            f"arn:aws:securityhub:us-east-1:{a}:product/{a}/default"}
        assert {f["Compliance"]["Status"] for f in found.values()} == {"FAILED"}
        assert {f["RecordState"] for f in found.values()} == {"ACTIVE"}
        assert not _acl_public(a, buckets[a])  # remediate: true, under the cap
        tags = in_account("s3", a).get_bucket_tagging  # no tags written on the resource
        assert "TagSet" not in _safe_tags(tags, buckets[a])
    assert first.remediation["acted_on"] == 2

    # Second run: the buckets were remediated and one instance fixed by hand (owner tag):
    # one resolved notice per policy, those findings archived and PASSED, updated in place.
    fixed, failing = accounts
    in_account("ec2", fixed).create_tags(Resources=[instances[fixed]], Tags=[{"Key": "owner", "Value": "x"}])
    second = run_once(opts())
    assert second.counts == {"new": 0, "escalated": 0, "still": 1, "resolved": 3, "retired": 0}
    resolved = custodian_notices()[2:]
    assert sorted((n["fields"]["policy"], n["fields"]["resolved"], n["level"]) for n in resolved) == [
        ("ec2-owner-tag", 1, "success"), ("s3-public-acl", 2, "success")]
    states = {a: {f["Resources"][0]["Id"]: (f["RecordState"], f["Compliance"]["Status"])
                  for f in hub_findings(a).values()} for a in accounts}
    assert all(len(s) == 2 for s in states.values())  # never duplicated
    assert states[fixed] == dict.fromkeys(states[fixed], ("ARCHIVED", "PASSED"))
    ec2_arn = f"arn:aws:ec2:us-east-1:{failing}:instance/{instances[failing]}"
    assert states[failing][ec2_arn] == ("ACTIVE", "FAILED")
    assert list(open_ledger().load(open_only=True)) == [("ec2-owner-tag", ec2_arn)]

    # Third run: the open finding is still failing, nothing changed -> no notice, no Security
    # Hub call.
    third = run_once(opts())
    assert third.counts == {"new": 0, "escalated": 0, "still": 1, "resolved": 0, "retired": 0}
    assert third.notices == 0 and third.hub_calls == 0 and len(custodian_notices()) == 4


def _safe_tags(get_tagging, bucket):
    try:
        return get_tagging(Bucket=bucket)
    except Exception as exc:  # NoSuchTagSet: the bucket has no tags at all
        assert "NoSuchTagSet" in str(exc)
        return {}


def test_remediation_cap_stops_and_alerts(c7n_aws, s3_bucket, accounts, policies, tmp_path, monkeypatch,
                                          pg_admin_url, pg_database):
    """Through the Lambda handler (EventBridge Scheduler's input), accounts file on S3, the
    ledger in PostgreSQL."""
    account = accounts[0]
    tag = uuid.uuid4().hex[:8]
    names = [f"cust-cap-{tag}-{i}" for i in range(3)]
    for b in names:
        in_account("s3", account).create_bucket(Bucket=b, ACL="public-read")
    set_setting(monkeypatch, "max_remediations", "2")
    pg_url = pg_admin_url.rsplit("/", 1)[0] + f"/{pg_database}"
    set_setting(monkeypatch, "database_url", pg_url)
    # two regions: S3 is global, a bucket matched from both must count once
    accounts_yml = write_accounts(tmp_path / "a.yml", [account], ["us-east-1", "eu-west-1"])
    open_store(s3_bucket).put("config/accounts.yml", accounts_yml.read_bytes())
    with pytest.raises(InputError, match="scheduled run input: acounts"):
        handler({"policies": str(policies), "acounts": "x"})
    summary = handler({"policies": str(policies), "accounts": f"{s3_bucket}/config/accounts.yml"})
    rep = SimpleNamespace(**summary)
    ran = {p.parent.parent.name: len(json.loads(p.read_text())) for p in
           (tmp_path / "custodian-runs").glob("*/detect/acct0/*/s3-public-acl/resources.json")}
    assert ran == {"us-east-1": 3, "eu-west-1": 3}  # c7n lists every bucket in each region...
    assert rep.remediation["stopped"] and rep.remediation["would_act_on"] == 3  # ...counted once
    assert rep.remediation["acted_on"] == 0
    assert all(_acl_public(account, b) for b in names)  # nothing was touched
    alert = [n for n in custodian_notices() if n["title"].startswith("remediation stopped")]
    assert len(alert) == 1 and alert[0]["level"] == "failure"
    assert "3 resources > cap 2" in alert[0]["title"]
    ledger = open_ledger(pg_url)
    assert sorted(f.resource_id for f in ledger.load(open_only=True).values()) == names
    assert ledger.runs()[0]["summary"]["remediation"]["stopped"] is True
    ledger.close()


def test_remediation_that_acts_on_fewer_than_detected_says_so(c7n_aws, accounts, policies, tmp_path):
    """Two remediate policies match the same public bucket, so detection counts 2. When acting,
    the first one fixes the bucket and the second no longer matches it: the resources changed
    between the two runs. That is a `remediation incomplete` failure notice, and the findings are
    recorded all the same."""
    account = accounts[0]
    bucket = f"cust-twice-{uuid.uuid4().hex[:8]}"
    in_account("s3", account).create_bucket(Bucket=bucket, ACL="public-read")
    (policies / "s3-again.yml").write_text(
        "policies:\n"
        "  - name: s3-public-acl-again\n"
        "    resource: aws.s3\n"
        "    description: The same rule under another name (a team copied it).\n"
        "    metadata: {severity: high, remediate: true}\n"
        "    filters: [{type: global-grants}]\n"
        "    actions: [{type: delete-global-grants}]\n")
    report = run_once(RunOptions(str(policies), write_accounts(tmp_path / "a.yml", [account])))
    assert report.remediation["acted_on"] == 1 and report.remediation.get("incomplete") is True, report.remediation
    notes = [n for n in custodian_notices() if n["title"].startswith("remediation incomplete")]
    assert len(notes) == 1 and notes[0]["level"] == "failure"
    assert notes[0]["title"] == "remediation incomplete: acted on 1 of 2"
    assert "remediate/ outputs" in notes[0]["message"]
    assert not _acl_public(account, bucket)
    recorded = {policy for policy, _ in open_ledger().load(open_only=True)}
    assert {"s3-public-acl", "s3-public-acl-again"} <= recorded
