"""Pure parts: our policy rules with lines, the accounts file, and every decision in decide.py."""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import psutil
import pytest

from shipyard.custodian import decide
from shipyard.custodian.c7n import c7n_python
from shipyard.custodian.c7n import call as c7n_call
from shipyard.custodian.decide import Change, Finding, Match
from shipyard.custodian.model import PolicyFile, check_file, duplicate_names, load_accounts
from shipyard.custodian.runner import parse_every, scrub_output
from shipyard.errors import ConfigError, InputError, ShipyardError
from shipyard.settings import get_settings

GOOD = """\
policies:
  - name: s3-public
    resource: aws.s3
    metadata: {severity: critical, remediate: true}
    filters: [{type: global-grants}]
    actions: [{type: delete-global-grants}]
"""


def problems(text: str) -> list[str]:
    return [str(p) for p in check_file(PolicyFile(text, "p.yml"))[1]]


def test_a_valid_policy_has_no_problem_and_knows_it_changes_resources():
    specs, found = check_file(PolicyFile(GOOD, "p.yml"))
    assert found == []
    assert specs[0].severity == "critical" and specs[0].remediate and specs[0].changes_resources
    assert specs[0].line == 2


def test_severity_is_required_and_checked_with_file_line_and_did_you_mean():
    text = GOOD.replace("severity: critical, ", "severity: hgh, ")
    assert problems(text) == ["p.yml:4: policy s3-public: metadata.severity must be one of low, "
                              "medium, high, critical, not 'hgh' (fix: did you mean 'high'?)"]
    missing = GOOD.replace("    metadata: {severity: critical, remediate: true}\n", "")
    assert problems(missing)[0].startswith("p.yml:2: policy s3-public: metadata.severity must be")


def test_an_action_that_changes_resources_needs_remediate_true():
    text = GOOD.replace(", remediate: true", "")
    [msg] = problems(text)
    assert msg.startswith("p.yml:6: policy s3-public: action 'delete-global-grants' changes resources")
    # notify-only actions would repeat every run: shipyard notifies, once per change
    assert "would repeat every run" in problems(text.replace("delete-global-grants", "notify"))[0]
    assert problems(GOOD.replace("[{type: delete-global-grants}]", "[delete-global-grants, notify]")) == []
    # the string form `- stop` counts too
    assert "action 'stop' changes" in problems(text.replace("[{type: delete-global-grants}]", "[stop]"))[0]


def test_policy_names_cannot_be_paths():
    [msg] = problems(GOOD.replace("name: s3-public", "name: ../../x"))
    assert msg.startswith("p.yml:2: policy name '../../x' must be letters and digits")


def test_post_finding_and_lambda_modes_are_refused():
    text = GOOD.replace("delete-global-grants", "post-finding")
    assert "post-finding tags the resources" in problems(text)[0]
    moded = GOOD.replace("    filters:", "    mode: {type: periodic, schedule: 'rate(1 day)'}\n    filters:")
    assert "only pull mode" in problems(moded)[0]


def test_duplicate_names_across_files_and_bad_yaml():
    a, _ = check_file(PolicyFile(GOOD, "a.yml"))
    b, _ = check_file(PolicyFile(GOOD, "b.yml"))
    [dupe] = duplicate_names(a + b)
    assert str(dupe).startswith("b.yml:2: policy name 's3-public' is used twice (first at a.yml:2)")
    with pytest.raises(InputError, match=r"p.yml:3: not valid YAML"):
        PolicyFile("policies:\n  - name: [x\n", "p.yml")


def test_accounts_file_is_checked_before_anything_runs(tmp_path):
    f = tmp_path / "accounts.yml"
    f.write_text("accounts:\n  - account_id: '111111111111'\n    name: prod\n"
                 "    role: arn:aws:iam::111111111111:role/custodian\n    regoins: [us-east-1]\n")
    with pytest.raises(InputError, match=r"accounts.yml:5: accounts.0.regoins") as e:
        load_accounts(f)
    assert e.value.hint == "did you mean 'regions'?"
    f.write_text("accounts:\n  - account_id: '111111111111'\n    name: prod\n")
    with pytest.raises(InputError, match="account prod needs a `role`"):
        load_accounts(f)


def m(policy="p", arn="arn:1", severity="high", account="111111111111", region="us-east-1"):
    return Match(policy, arn, account, region, "aws.s3", arn.rsplit(":", 1)[-1], severity)


def f(policy="p", arn="arn:1", state="open", severity="high", hub_sent=None):
    return Finding(policy, arn, "111111111111", "us-east-1", "aws.s3", "1", severity, state,
                   100.0, 100.0, None, hub_sent)


SCOPE = {("p", "111111111111", "us-east-1")}


def test_diff_new_still_escalated_resolved_reopened():
    assert [c.kind for c in decide.diff({}, [m()], SCOPE, 200)] == ["new"]
    prev = {("p", "arn:1"): f()}
    [still] = decide.diff(prev, [m()], SCOPE, 200)
    assert still.kind == "still" and still.finding.first_seen == 100 and still.finding.last_seen == 200
    assert decide.diff({("p", "arn:1"): f(severity="medium")}, [m()], SCOPE, 200)[0].kind == "escalated"
    [gone] = decide.diff(prev, [], SCOPE, 200)
    assert gone.kind == "resolved" and gone.finding.state == "resolved" and gone.finding.resolved_at == 200
    assert decide.diff({("p", "arn:1"): f(state="resolved")}, [m()], SCOPE, 300)[0].kind == "new"


def test_findings_of_a_policy_removed_from_the_bundle_are_retired_once():
    prev = {("p", "arn:1"): f(), ("gone", "arn:2"): f(policy="gone")}
    changes = decide.diff(prev, [m()], SCOPE, 200, policies={"p"})
    [retired] = [c for c in changes if c.kind == "retired"]
    assert retired.finding.policy == "gone" and retired.finding.state == "resolved"
    [n] = decide.notices(changes)
    assert n.level == "info" and "policy removed from the bundle" in n.title
    doc = decide.asff(retired, 200, "t", "d")
    assert doc["RecordState"] == "ARCHIVED" and doc["Compliance"] == {"Status": "NOT_AVAILABLE"}
    # without the bundle's names (plan runs a subset), nothing is retired
    assert [c.kind for c in decide.diff(prev, [m()], SCOPE, 200)] == ["still"]


def test_a_failed_account_or_region_resolves_nothing():
    prev = {("p", "arn:1"): f()}
    assert decide.diff(prev, [], set(), 200) == []
    assert decide.diff(prev, [], {("p", "111111111111", "eu-west-1")}, 200) == []


def test_notices_one_per_policy_only_on_change():
    changes = [Change("new", f(arn="arn:1")), Change("new", f(arn="arn:2")),
               Change("still", f(policy="q", arn="arn:3")), Change("resolved", f(policy="r", severity="low"))]
    out = decide.notices(changes)
    assert [(n.policy, n.counts, n.level) for n in out] == [
        ("p", {"new": 2}, "failure"), ("r", {"resolved": 1}, "success")]
    assert decide.notices([Change("still", f())]) == []
    many = [Change("new", f(arn=f"arn:{i:03}", severity="low")) for i in range(25)]
    [n] = decide.notices(many)
    assert n.level == "warning" and len(n.resources["new"]) == decide.MAX_LISTED + 1
    assert n.resources["new"][-1] == "... and 5 more"


def test_security_hub_findings_asff_batches_and_refresh():
    c = Change("new", f())
    doc = decide.asff(c, 200, "t", "d")
    assert doc["ProductArn"] == "arn:aws:securityhub:us-east-1:111111111111:product/111111111111/default"
    assert doc["Compliance"] == {"Status": "FAILED"} and doc["RecordState"] == "ACTIVE"
    assert doc["Id"] == "shipyard-custodian/p/arn:1"
    done = decide.asff(Change("resolved", f(state="resolved")), 300, "t", "d")
    assert done["Compliance"] == {"Status": "PASSED"} and done["RecordState"] == "ARCHIVED"
    assert done["Id"] == doc["Id"]  # the same finding is updated, not a new one
    docs = [decide.asff(Change("new", f(arn=f"arn:{i}")), 1, "t", "d") for i in range(250)]
    docs.append(decide.asff(Change("new", Finding("p", "x", "222222222222", "eu-west-1", "aws.s3",
                                                  "x", "low", "open", 1, 1)), 1, "t", "d"))
    b = decide.batches(docs)
    assert [len(x) for x in b[("111111111111", "us-east-1")]] == [100, 100, 50]
    assert [len(x) for x in b[("222222222222", "eu-west-1")]] == [1]
    day = 86400
    assert decide.hub_changes([Change("still", f(hub_sent=0))], 10 * day, 30) == []
    assert len(decide.hub_changes([Change("still", f(hub_sent=0))], 31 * day, 30)) == 1


def test_an_archive_that_never_reached_security_hub_is_sent_again():
    sent_open = replace(f(state="resolved"), resolved_at=300.0, hub_sent=200.0)
    archived = replace(f(arn="arn:2", state="resolved"), resolved_at=300.0, hub_sent=300.0)
    never_sent = replace(f(arn="arn:3", state="resolved"), resolved_at=300.0)
    prev = {x.key: x for x in (sent_open, archived, never_sent)}
    assert [c.finding.arn for c in decide.hub_retries(prev, [])] == ["arn:1"]
    assert decide.hub_retries(prev, [Change("new", sent_open)]) == []


def test_remediation_only_remediate_policies_never_dryrun_and_capped():
    ms = [m(arn=f"arn:{i}") for i in range(3)] + [m(policy="other")]
    d = decide.remediation(ms, {"p"}, 3, dryrun=False)
    assert d.allowed and d.count == 3 and d.by_policy == {"p": 3}
    assert not decide.remediation(ms, {"p"}, 2, dryrun=False).allowed
    assert not decide.remediation(ms, {"p"}, 10, dryrun=True).allowed
    assert not decide.remediation(ms, set(), 10, dryrun=False).allowed


def test_parse_every():
    assert parse_every("90s") == 90 and parse_every("15m") == 900 and parse_every("1h") == 3600
    for bad in ("", "1w", "0m", "h"):
        with pytest.raises(ShipyardError):
            parse_every(bad)


def test_run_outputs_are_scrubbed_of_secrets():
    resources = [{"FunctionName": "f", "Environment": {"Variables": {"DB_URL": "postgresql://u:pw@h/db"}},
                  "Tags": [{"Key": "owner", "Value": "x"}], "ClientSecret": "abc",
                  "Note": "key AKIAABCDEFGHIJKLMNOP"}]
    meta = {"config": {"assume_role": "arn:aws:iam::1:role/r", "external_id": "ext-123456"},
            "log": "assumed with ext-123456"}
    assert scrub_output(resources, []) == [{
        "FunctionName": "f", "Environment": {"Variables": {"DB_URL": "***"}},
        "Tags": [{"Key": "owner", "Value": "x"}], "ClientSecret": "***", "Note": "key ***"}]
    assert scrub_output(meta, ["ext-123456"]) == {
        "config": {"assume_role": "arn:aws:iam::1:role/r", "external_id": "***"}, "log": "assumed with ***"}


def test_a_c7n_call_past_its_timeout_is_killed_with_its_workers(tmp_path):
    # a stand-in "c7n" that forks a worker and hangs: both must be gone after the timeout
    script = tmp_path / "hang.sh"
    script.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {tmp_path / 'worker.pid'}\nsleep 300\n")
    script.chmod(0o755)
    with pytest.raises(ShipyardError, match="did not finish within 1 s"):
        c7n_call([str(script)], what="hanging", timeout=1)
    worker = int((tmp_path / "worker.pid").read_text())
    time.sleep(0.2)
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE


def test_c7n_python_from_a_venv_or_from_the_scripts_shebang(tmp_path, monkeypatch):
    venv = tmp_path / "venv"
    venv.mkdir()
    for name in ("custodian", "c7n-org"):
        (venv / name).write_text(f"#!{sys.executable}\n")
    set_bin = lambda d: (monkeypatch.setenv("SHIPYARD_CUSTODIAN__C7N_BIN_DIR", str(d)),  # noqa: E731
                         get_settings(fresh=True))
    set_bin(venv)
    assert c7n_python() == sys.executable  # a system-wide install: the #! line
    (venv / "python").symlink_to(sys.executable)
    assert c7n_python() == str(venv / "python")
    set_bin(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="Cloud Custodian .* is not installed"):
        c7n_python()
