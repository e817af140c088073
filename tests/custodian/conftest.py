"""Custodian tests run c7n (its own venv, .venv-c7n) against moto's server over HTTP, with
accounts reached by assume-role, exactly as in production minus AWS."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from shipyard import aws
from shipyard.settings import get_settings
from tests.helpers import read_outbox

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "custodian" / "policies"


def role(account: str) -> str:
    return f"arn:aws:iam::{account}:role/custodian"


def in_account(service: str, account: str, region: str = "us-east-1"):
    """A client in `account`, reached the way the runner reaches it (assume-role)."""
    return aws.client(service, region=region, role_arn=role(account))


def custodian_notices() -> list[dict]:
    return [n for n in read_outbox() if n["tool"] == "custodian"]


def hub_findings(account: str, region: str = "us-east-1") -> dict[str, dict]:
    hub = in_account("securityhub", account, region)
    return {f["Id"]: f for f in hub.get_findings(MaxResults=100)["Findings"]}


def write_accounts(path: Path, accounts: list[str], regions: list[str] | None = None) -> Path:
    lines = ["accounts:"]
    for i, a in enumerate(accounts):
        lines += [f"  - account_id: '{a}'", f"    name: acct{i}", f"    role: {role(a)}",
                  f"    regions: [{', '.join(regions or ['us-east-1'])}]"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def c7n_aws(s3_server, monkeypatch):
    """moto's server for boto3 and c7n alike; each test's accounts get unique ids."""
    aws.reset_clients()
    yield s3_server
    aws.reset_clients()


@pytest.fixture
def accounts() -> list[str]:
    base = uuid.uuid4().int % 10**10
    return [f"21{base:010d}", f"31{base:010d}"]


@pytest.fixture
def policies(tmp_path) -> Path:
    dest = tmp_path / "policies"
    shutil.copytree(EXAMPLES, dest)
    return dest


def set_setting(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(f"SHIPYARD_CUSTODIAN__{name.upper()}", value)
    get_settings(fresh=True)
