"""The files under examples/ami/ are usable as they are."""

from __future__ import annotations

import ast
import json
import re

import yaml

from shipyard.settings import Settings
from tests.conftest import REPO

EXAMPLES = REPO / "examples" / "ami"


def _adapter_calls() -> set[str]:
    """IAM actions for every EC2 / Auto Scaling call in ami/aws.py (direct or paginated)."""
    tree = ast.parse((REPO / "src" / "shipyard" / "ami" / "aws.py").read_text())
    calls = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        # self.ec2.describe_images(...) / self.asg.start_instance_refresh(...)
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Attribute) \
                and f.value.attr in ("ec2", "asg") and f.attr != "meta":
            calls.add((f.value.attr, f.attr))
        # aws.paginate(self.ec2, "describe_images", ...)
        if isinstance(f, ast.Attribute) and f.attr == "paginate" and len(node.args) >= 2 \
                and isinstance(node.args[0], ast.Attribute) and isinstance(node.args[1], ast.Constant):
            calls.add((node.args[0].attr, node.args[1].value))
    service = {"ec2": "ec2", "asg": "autoscaling"}
    return {f"{service[s]}:{''.join(w.title() for w in op.split('_'))}" for s, op in calls}


def test_the_iam_policy_allows_every_call_the_adapter_makes():
    policy = json.loads((EXAMPLES / "iam-policy.json").read_text())
    allowed = {a for st in policy["Statement"] for a in
               ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    needed = _adapter_calls()
    assert len(needed) >= 16  # the walk found the calls (not an empty set passing trivially)
    assert needed - allowed == set()


def test_the_example_settings_load_and_the_ci_files_parse(monkeypatch):
    monkeypatch.setenv("SHIPYARD_CONFIG", str(EXAMPLES / "shipyard.toml"))
    s = Settings()
    assert s.ami.keep == 5 and s.ami.on_timeout == "rollback" and s.ami.checkpoint_delay == 300
    workflow = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    run = " ".join(step.get("run", "") for step in workflow["jobs"]["release"]["steps"])
    assert "shipyard ami build" in run and "shipyard ami release" in run
    assert yaml.safe_load((EXAMPLES / "buildspec.yml").read_text())["version"] == 0.2
    hcl = (EXAMPLES / "web.pkr.hcl").read_text()
    assert re.search(r'variable "branch"', hcl) and "branch    = var.branch" in hcl
