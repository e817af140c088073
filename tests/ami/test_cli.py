"""`shipyard ami ...` end to end on moto's server: prune (dry-run table, JSON, errors), release
exit codes, build with a stand-in `packer` that prints Packer's machine-readable output, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from shipyard.cli import main
from shipyard.settings import get_settings
from tests.ami.conftest import T0
from tests.helpers import read_outbox

# A stand-in for `packer build -machine-readable`: registers the AMI on moto's server (as the
# amazon-ebs builder would on AWS) and prints what Packer prints. STANDIN_PACKER_MODE picks a
# misbehaviour: wrong-branch, no-tags, fail, no-artifact.
PACKER = r'''#!{python}
import os, sys, time, boto3
args = sys.argv[1:]
assert args[:3] == ["build", "-machine-readable", "-color=false"], args
branch = next(a[len("-var=branch="):] for a in args if a.startswith("-var=branch="))
assert os.path.isfile(args[-1]), args
mode = os.environ.get("STANDIN_PACKER_MODE", "ok")
now = int(time.time())
out = lambda *f: print(",".join([str(now), *f]), flush=True)
out("", "ui", "say", "==> amazon-ebs: Prevalidating AMI Name: web-%!(PACKER_COMMA) " + branch)
if mode == "fail":
    out("", "ui", "error", "Build 'amazon-ebs' errored: UnauthorizedOperation")
    sys.exit(1)
if mode != "no-artifact":
    ec2 = boto3.client("ec2", region_name="us-east-1")
    ami = ec2.register_image(Name="web-%d" % now, RootDeviceName="/dev/xvda")["ImageId"]
    tags = {{"branch": "dev" if mode == "wrong-branch" else branch, "timestamp": str(now)}}
    if mode != "no-tags":
        ec2.create_tags(Resources=[ami], Tags=[{{"Key": k, "Value": v}} for k, v in tags.items()])
    out("amazon-ebs", "artifact-count", "1")
    out("amazon-ebs", "artifact", "0", "builder-id", "mitchellh.amazonebs")
    out("amazon-ebs", "artifact", "0", "id", "us-east-1:" + ami)
    out("amazon-ebs", "artifact", "0", "string", "AMIs were created:\\nus-east-1: " + ami + "\\n")
    out("amazon-ebs", "artifact", "0", "end")
out("", "ui", "say", "Build 'amazon-ebs' finished.")
'''


def cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())


@pytest.mark.parametrize("cmd", [[], ["build"], ["prune"], ["release"], ["demo"], ["schema"]])
def test_help(capsys, cmd):
    code, out, _ = cli(capsys, "ami", *cmd, "--help")
    assert code == 0 and "Usage" in out


def test_schema_is_the_release_options(capsys):
    code, out, _ = cli(capsys, "ami", "schema")
    schema = json.loads(out)
    assert code == 0 and schema["additionalProperties"] is False
    assert schema["properties"]["on_timeout"]["enum"] == ["rollback", "cancel"]


def test_prune_dry_run_table_json_and_errors(capsys, ami_env):
    env = ami_env
    ids = [env.bake(T0 + timedelta(minutes=n)) for n in range(4)]
    env.ec2.run_instances(ImageId=ids[0], MinCount=1, MaxCount=1)

    code, out, err = cli(capsys, "ami", "prune", "--branch", env.branch, "--keep", "2", "--dry-run")
    assert code == 0 and "DescribeImageReferences (all resource types)" in err
    assert "1 would be deleted" in out and "newest 2 (#1)" in out and "(running)" in out
    assert all(env.image_exists(i) for i in ids)

    code, out, _ = cli(capsys, "ami", "prune", "--branch", env.branch, "--keep", "2", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["deregistered"] == [ids[1]] and doc["dry_run"] is False
    assert [i["action"] for i in doc["images"]] == ["keep", "keep", "delete", "keep"]
    assert not env.image_exists(ids[1])

    code, _, err = cli(capsys, "ami", "prune", "--branch", env.branch, "--keep", "1")
    assert code == 2 and "--keep must be at least 2" in err and "Traceback" not in err


def test_release_exit_codes(capsys, ami_env, monkeypatch):
    env = ami_env
    ids = [env.bake(T0 + timedelta(minutes=n)) for n in range(3)]
    lt = env.template(ids[0])
    env.group(lt, "1")
    env.standin.scripts.append("fail")
    common = ["--branch", env.branch, "--launch-template", env.name("lt"), "--asg", env.name("asg")]
    monkeypatch.setenv("SHIPYARD_AMI__POLL_INTERVAL", "0.01")  # real sleeps here: keep them short
    get_settings(fresh=True)
    code, out, _ = cli(capsys, "ami", "release", *common, "--dry-run", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["image_id"] == ids[-1] and plan["source_version"] == 1
    assert plan["launch_template_data"]["ImageId"] == ids[-1]
    assert plan["refresh"]["Preferences"]["AutoRollback"] is True
    code, out, _ = cli(capsys, "ami", "release", *common, "--dry-run")
    assert code == 0 and f"would release {ids[-1]}" in " ".join(out.split())
    versions = env.ec2.describe_launch_template_versions(LaunchTemplateId=lt)["LaunchTemplateVersions"]
    assert len(versions) == 1 and not env.standin.refreshes  # the dry runs changed nothing
    code, out, err = cli(capsys, "ami", "release", *common, "--json")
    assert code == 4 and json.loads(out)["outcome"] == "rolled-back"
    assert "RollbackSuccessful" in err
    code, out, err = cli(capsys, "ami", "release", *common)
    assert code == 0 and "succeeded" in out
    code, _, err = cli(capsys, "ami", "release", *common, "--keep-versions", "1")
    assert code == 2 and "at least 2" in err
    code, _, err = cli(capsys, "ami", "release", *common, "--checkpoints", "50,20")
    assert code == 2 and "ascending" in err
    lines = read_outbox()
    assert [n["title"].split(":")[0] for n in lines][:3] == [
        "launch template version created", "instance refresh started", "release rolled-back"]


@pytest.fixture
def packer(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "packer"
    exe.write_text(PACKER.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    template = tmp_path / "web.pkr.hcl"
    template.write_text('variable "branch" { type = string }\n')
    return template


def test_build_parses_the_artifact_and_checks_its_tags(capsys, ami_env, packer, monkeypatch):
    env = ami_env
    code, out, err = cli(capsys, "ami", "build", "--template", str(packer), "--branch", env.branch)
    assert code == 0, err
    ami = out.strip().split(": ")[1]
    tags = {t["Key"]: t["Value"] for t in env.ec2.describe_images(ImageIds=[ami])["Images"][0]["Tags"]}
    assert tags["branch"] == env.branch
    assert "Prevalidating AMI Name: web-, " in err  # unescaped %!(PACKER_COMMA)

    for mode, expect in [("wrong-branch", "expected"), ("no-tags", "no timestamp tag"),
                         ("fail", "packer build failed (exit 1): Build 'amazon-ebs' errored"),
                         ("no-artifact", "made no AMI")]:
        monkeypatch.setenv("STANDIN_PACKER_MODE", mode)
        code, _, err = cli(capsys, "ami", "build", "--template", str(packer), "--branch", env.branch)
        assert code == 2 and expect in err, (mode, err)

    code, _, err = cli(capsys, "ami", "build", "--template", "missing.pkr.hcl", "--branch", "x")
    assert code == 2 and "is not a file" in err
    monkeypatch.setenv("PATH", "/nonexistent")
    code, _, err = cli(capsys, "ami", "build", "--template", str(packer), "--branch", "x")
    assert code == 2 and "packer is not on PATH" in err


def test_demo_runs_the_whole_flow_in_process(tmp_path):
    # Its own process: mock_aws resets moto's in-process backends, which the session's moto
    # server shares with this one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run([sys.executable, "-m", "shipyard.cli", "ami", "demo"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "succeeded" in out and "rolled-back" in out and "still v2" in out
    titles = [n["title"] for n in read_outbox(tmp_path / "outbox.jsonl")]
    assert titles[0] == "launch template version created: main" and len(titles) == 8
