"""Pure decisions over plain data, time passed in: what changed since the last run, which
notices to send, what goes to Security Hub, whether remediation may run.

A finding is keyed on (policy name, resource ARN), not on c7n's hash of the policy text: editing
a policy's filters keeps its findings, and only a real change (new, escalated, resolved) is
reported. A finding is resolved only where its policy ran cleanly in the finding's account and
region this run, so a failed account never looks compliant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Iterable, Literal

from shipyard.custodian.model import SEVERITY_RANK

# retired: the finding's policy left the bundle; closed, and archived in Security Hub.
Kind = Literal["new", "escalated", "still", "resolved", "retired"]
KINDS = ("new", "escalated", "still", "resolved", "retired")
NOTICE_KINDS = ("new", "escalated", "resolved", "retired")
CLOSING_KINDS = ("resolved", "retired")
HUB_BATCH = 100  # BatchImportFindings takes at most 100 findings per call
MAX_LISTED = 20  # resources named in one notice; the rest are counted

# c7n resource type -> ASFF Resources[].Type (https://docs.aws.amazon.com/securityhub/latest/
# userguide/asff-resources.html); anything else is "Other".
ASFF_TYPES = {
    "aws.s3": "AwsS3Bucket", "aws.ec2": "AwsEc2Instance", "aws.security-group": "AwsEc2SecurityGroup",
    "aws.ebs": "AwsEc2Volume", "aws.iam-user": "AwsIamUser", "aws.iam-role": "AwsIamRole",
    "aws.lambda": "AwsLambdaFunction", "aws.rds": "AwsRdsDbInstance", "aws.sqs": "AwsSqsQueue",
    "aws.sns": "AwsSnsTopic", "aws.kms-key": "AwsKmsKey", "aws.dynamodb-table": "AwsDynamoDbTable",
}


@dataclass(frozen=True)
class Match:
    """One resource a policy matched in this run."""

    policy: str
    arn: str
    account_id: str
    region: str
    resource_type: str
    resource_id: str
    severity: str


@dataclass(frozen=True)
class Finding(Match):
    """A ledger row: a match with its history."""

    state: Literal["open", "resolved"] = "open"
    first_seen: float = 0.0
    last_seen: float = 0.0
    resolved_at: float | None = None
    hub_sent: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.policy, self.arn)


@dataclass(frozen=True)
class Change:
    kind: Kind
    finding: Finding  # the row as it is after this run


def diff(previous: dict[tuple[str, str], Finding], matches: Iterable[Match],
         scopes: set[tuple[str, str, str]], now: float,
         policies: set[str] | None = None) -> list[Change]:
    """Compare this run's matches with the ledger. `scopes` holds (policy, account_id, region)
    for every place a policy ran cleanly this run; `policies`, when given, is the whole bundle:
    open findings of a policy no longer in it are retired."""
    changes: list[Change] = []
    seen: set[tuple[str, str]] = set()
    for m in matches:
        key = (m.policy, m.arn)
        if key in seen:
            continue
        seen.add(key)
        prior = previous.get(key)
        if prior is None or prior.state == "resolved":
            row = Finding(**asdict(m), state="open", first_seen=now, last_seen=now,
                          hub_sent=None if prior is None else prior.hub_sent)
            changes.append(Change("new", row))
            continue
        kind: Kind = ("escalated" if SEVERITY_RANK[m.severity] > SEVERITY_RANK.get(prior.severity, 0)
                      else "still")
        changes.append(Change(kind, replace(prior, severity=m.severity, last_seen=now)))
    for key, prior in previous.items():
        if prior.state != "open" or key in seen:
            continue
        if (prior.policy, prior.account_id, prior.region) in scopes:
            changes.append(Change("resolved", replace(prior, state="resolved", resolved_at=now)))
        elif policies is not None and prior.policy not in policies:
            changes.append(Change("retired", replace(prior, state="resolved", resolved_at=now)))
    return changes


@dataclass(frozen=True)
class PolicyNotice:
    policy: str
    severity: str
    level: str
    title: str
    message: str
    counts: dict[str, int]
    resources: dict[str, list[str]]


def notices(changes: Iterable[Change], *, dryrun: bool = False) -> list[PolicyNotice]:
    """One notice per policy with a new, escalated or resolved finding; nothing otherwise."""
    grouped: dict[str, list[Change]] = {}
    for c in changes:
        if c.kind in NOTICE_KINDS:
            grouped.setdefault(c.finding.policy, []).append(c)
    out = []
    for policy in sorted(grouped):
        items = grouped[policy]
        counts = {k: sum(1 for c in items if c.kind == k) for k in NOTICE_KINDS}
        counts = {k: v for k, v in counts.items() if v}
        severity = max((c.finding.severity for c in items), key=lambda s: SEVERITY_RANK.get(s, 0))
        failing = counts.get("new", 0) + counts.get("escalated", 0)
        level = ("info" if set(counts) == {"retired"} else "success" if not failing else
                 "failure" if SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK["high"] else "warning")
        resources: dict[str, list[str]] = {}
        for c in items:
            resources.setdefault(c.kind, []).append(c.finding.arn)
        listed = {k: (sorted(v)[:MAX_LISTED] + ([f"... and {len(v) - MAX_LISTED} more"]
                                                if len(v) > MAX_LISTED else []))
                  for k, v in resources.items()}
        summary = ", ".join(f"{n} {k}" for k, n in counts.items())
        title = (f"{policy} ({severity}): {summary}" + (" (policy removed from the bundle)"
                                                         if "retired" in counts else "")
                 + (" [dry run]" if dryrun else ""))
        lines = [f"{k}: {', '.join(v)}" for k, v in listed.items()]
        out.append(PolicyNotice(policy, severity, level, title, "\n".join(lines), counts, listed))
    return out


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hub_changes(changes: Iterable[Change], now: float, refresh_days: float) -> list[Change]:
    """What to import: new, escalated, resolved, and still-failing ones not sent for
    `refresh_days` (Security Hub archives findings that are not updated for 90 days)."""
    out = []
    for c in changes:
        stale = c.finding.hub_sent is None or now - c.finding.hub_sent > refresh_days * 86400
        if c.kind in NOTICE_KINDS or (c.kind == "still" and stale):
            out.append(c)
    return out


def hub_retries(previous: dict[tuple[str, str], Finding], changes: Iterable[Change]) -> list[Change]:
    """Resolved findings whose archiving never reached Security Hub (the import failed, or the
    run that resolved them had no --security-hub), to send again."""
    touched = {c.finding.key for c in changes}
    return [Change("resolved", f) for key, f in previous.items()
            if key not in touched and f.state == "resolved" and f.hub_sent is not None
            and f.resolved_at is not None and f.resolved_at > f.hub_sent]


def asff(c: Change, now: float, title: str, description: str, partition: str = "aws") -> dict:
    """The finding in AWS Security Finding Format, in the resource's account's own product
    (arn:aws:securityhub:<region>:<account>:product/<account>/default). The Id is stable per
    (policy, ARN), so an import updates the same finding instead of adding one."""
    f = c.finding
    closed = c.kind in CLOSING_KINDS
    return {
        "SchemaVersion": "2018-10-08",
        "Id": f"shipyard-custodian/{f.policy}/{f.arn}"[:512],
        "ProductArn": f"arn:{partition}:securityhub:{f.region}:{f.account_id}:product/"
                      f"{f.account_id}/default",
        "GeneratorId": f"shipyard-custodian/{f.policy}",
        "AwsAccountId": f.account_id,
        "Types": ["Software and Configuration Checks/Cloud Custodian"],
        "CreatedAt": _iso(f.first_seen),
        "UpdatedAt": _iso(now),
        "Severity": {"Label": "INFORMATIONAL" if closed else f.severity.upper()},
        "Title": title[:256],
        "Description": (description or title)[:1024],
        "Resources": [{"Type": ASFF_TYPES.get(f.resource_type, "Other"), "Id": f.arn,
                       "Partition": partition, "Region": f.region}],
        # a retired policy no longer says whether the resource complies
        "Compliance": {"Status": {"resolved": "PASSED", "retired": "NOT_AVAILABLE"}.get(c.kind, "FAILED")},
        "RecordState": "ARCHIVED" if closed else "ACTIVE",
    }


def batches(findings: list[dict], size: int = HUB_BATCH) -> dict[tuple[str, str], list[list[dict]]]:
    """Findings per (account, region) - each goes to that account's hub - in calls of ≤ size."""
    grouped: dict[tuple[str, str], list[dict]] = {}
    for f in findings:
        grouped.setdefault((f["AwsAccountId"], f["Resources"][0]["Region"]), []).append(f)
    return {k: [v[i:i + size] for i in range(0, len(v), size)] for k, v in grouped.items()}


@dataclass(frozen=True)
class RemediationDecision:
    allowed: bool
    count: int
    cap: int
    by_policy: dict[str, int]


def remediation(matches: Iterable[Match], remediate_policies: set[str], cap: int, *,
                dryrun: bool) -> RemediationDecision:
    """Remediate only policies with remediate: true, never in a dry run, and not at all when
    the run would act on more than `cap` resources (a bad filter must not stop a fleet)."""
    by_policy: dict[str, int] = {}
    for m in matches:
        if m.policy in remediate_policies:
            by_policy[m.policy] = by_policy.get(m.policy, 0) + 1
    count = sum(by_policy.values())
    return RemediationDecision(not dryrun and 0 < count <= cap, count, cap, by_policy)
