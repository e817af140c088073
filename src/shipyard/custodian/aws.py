"""AWS Lambda entry point: `shipyard.custodian.aws.handler`.

EventBridge Scheduler invokes it on a schedule with the run's options as the target's fixed
input, the same options as `shipyard custodian run`:

    {"policies": "s3://acme-custodian/policies", "accounts": "s3://acme-custodian/accounts.yml",
     "regions": ["ap-south-1"], "security_hub": true, "output": "s3://acme-custodian/runs"}

It returns the run summary. Bad input raises before anything runs; a failed run raises, so the
schedule's retry policy and dead-letter queue see it. The image needs the c7n venv
(SHIPYARD_CUSTODIAN__C7N_BIN_DIR) and a PostgreSQL ledger (SHIPYARD_CUSTODIAN__DATABASE_URL):
a Lambda's disk does not outlive it. A run must also fit Lambda's 15 minutes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.custodian.runner import RunOptions, run_once
from shipyard.errors import InputError, did_you_mean


class ScheduledRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policies: str
    accounts: str | None = None
    regions: list[str] = Field(default_factory=list)
    dryrun: bool = False
    security_hub: bool = False
    output: str | None = None


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    try:
        run = ScheduledRun.model_validate(event or {})
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        field = ".".join(map(str, e["loc"]))
        hint = did_you_mean(field, ScheduledRun.model_fields) if e["type"] == "extra_forbidden" else None
        raise InputError(f"scheduled run input: {field}: {e['msg']}", hint=hint) from None
    opts = RunOptions(run.policies, run.accounts, run.regions, run.dryrun, run.security_hub, run.output)
    return run_once(opts).summary()
