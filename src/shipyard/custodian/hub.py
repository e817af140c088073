"""Security Hub: BatchImportFindings into each account's own hub, ≤ 100 findings per call.

Each finding goes to the account (and region) of its resource, with that account's role, under
the account's default product ARN (arn:aws:securityhub:<region>:<account>:product/<account>/
default), which every account may import into without a product subscription
(https://docs.aws.amazon.com/securityhub/latest/userguide/finding-update-batchimportfindings.html).
Nothing is written onto the resources themselves (no tags).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipyard import aws
from shipyard.custodian.decide import batches
from shipyard.errors import ShipyardError


@dataclass
class HubResult:
    sent: set[str] = field(default_factory=set)  # finding Ids accepted
    failed: list[str] = field(default_factory=list)  # "<account>/<region>: <code>" lines
    calls: int = 0


def import_findings(findings: list[dict[str, Any]],
                    roles: dict[str, tuple[str | None, str | None]]) -> HubResult:
    """Import `findings`; `roles` maps account id -> (role ARN, external id) (None: the
    caller's own credentials)."""
    result = HubResult()
    for (account, region), calls in sorted(batches(findings).items()):
        role, external_id = roles.get(account, (None, None))
        try:
            hub = aws.client("securityhub", region=region, role_arn=role, external_id=external_id)
        except ShipyardError as exc:  # one account's failure stops no other
            result.failed.append(f"{account}/{region}: {exc.message}")
            continue
        for batch in calls:
            result.calls += 1
            try:
                with aws.aws_errors(f"importing findings into Security Hub {account}/{region}"):
                    answer = hub.batch_import_findings(Findings=batch)
            except ShipyardError as exc:
                result.failed.append(f"{account}/{region}: {exc.message}")
                continue
            bad = {f.get("Id") for f in answer.get("FailedFindings", [])}
            for f in answer.get("FailedFindings", []):
                result.failed.append(f"{account}/{region}: {f.get('Id')}: {f.get('ErrorCode')}")
            result.sent |= {f["Id"] for f in batch if f["Id"] not in bad}
    return result
