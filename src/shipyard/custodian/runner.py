"""One custodian run, and the `--every` loop.

A run: load the current bundle -> c7n-org over every account and region with the policies'
actions stripped (detection only) -> ARNs -> diff against the ledger -> remediation (only
remediate: true, never in a dry run, capped per run; a second c7n-org run with just those
policies) -> Security Hub -> ledger (one transaction) -> notices (after the ledger is saved,
so a notice is never repeated) -> c7n's outputs copied to the run folder.
"""

from __future__ import annotations

import json
import re
import signal
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from shipyard import aws
from shipyard.custodian import c7n, decide
from shipyard.custodian.bundle import check_dir, load_current, require_valid
from shipyard.custodian.hub import import_findings
from shipyard.custodian.ledger import open_ledger
from shipyard.custodian.model import Account, PolicySpec, load_accounts
from shipyard.errors import InputError, ShipyardError, TransientError
from shipyard.notify import Notice, Notifier, get_notifier
from shipyard.redact import MASK, redact, redact_obj
from shipyard.settings import get_settings
from shipyard.store import open_store


_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


@dataclass
class RunOptions:
    policies: str
    accounts: Path | str | None = None  # a file or s3://bucket/key
    regions: list[str] = field(default_factory=list)
    dryrun: bool = False
    security_hub: bool = False
    output_url: str | None = None
    database_url: str | None = None
    only: set[str] | None = None  # policy names to run (plan --base); None: all


@dataclass
class RunReport:
    run_id: str
    bundle: str
    dryrun: bool
    counts: dict[str, int]
    changes: list[decide.Change]
    matches: list[decide.Match]
    notices: int = 0
    hub_sent: int = 0
    hub_calls: int = 0
    hub_failed: list[str] = field(default_factory=list)
    remediation: dict[str, Any] = field(default_factory=dict)
    output: str = ""

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "bundle": self.bundle, "dryrun": self.dryrun,
                "counts": self.counts, "notices": self.notices, "hub_sent": self.hub_sent,
                "hub_calls": self.hub_calls, "hub_failed": self.hub_failed,
                "remediation": self.remediation, "output": self.output}


def resolve_accounts(path: Path | str | None, regions: list[str]) -> list[Account]:
    """The accounts file (a path or s3://bucket/key), each with its regions filled in (flag,
    else file, else settings); without a file, the caller's own account."""
    default = regions or get_settings().custodian.regions
    for r in default:
        if not _REGION.match(r):
            raise InputError(f"invalid region {r!r}", hint="an AWS region name such as eu-west-1")
    if path is None:
        return [Account(account_id=aws.account_id(), name="default", regions=default)]
    return [a.model_copy(update={"regions": regions or a.regions or default})
            for a in load_accounts(path).accounts]


def _detection_policy(spec: PolicySpec) -> dict[str, Any]:
    """The policy without its actions (and their limits): detection never changes anything."""
    return {k: v for k, v in spec.data.items()
            if k not in ("actions", "max-resources", "max-resources-percent")}


def _observe(specs: list[PolicySpec], accounts: list[Account], workdir: Path, phase: str,
             policies: list[dict[str, Any]], *, dryrun: bool, log: Callable[[str], None],
             ) -> tuple[list[decide.Match], set[tuple[str, str, str]]]:
    """Run `policies` with c7n-org; the matches (with ARNs) and where each policy ran."""
    by_name = {s.name: s for s in specs}
    ids = {a.name: a.account_id for a in accounts}
    pol_file = c7n.write_policies(workdir / f"{phase}.yml", policies)
    if len(accounts) == 1 and not (accounts[0].role or accounts[0].profile):
        observed = c7n.run_org(None, pol_file, workdir / "out" / phase, dryrun=dryrun,
                               local=(accounts[0].name, accounts[0].regions), log=log)
    else:
        acc_file = c7n.write_accounts(workdir / "accounts.yml",
                                      [a.model_dump(exclude_none=True) for a in accounts])
        observed = c7n.run_org(acc_file, pol_file, workdir / "out" / phase, dryrun=dryrun, log=log)
    observed = [o for o in observed if o.policy in by_name and o.account_name in ids]
    scopes = {(o.policy, ids[o.account_name], o.region) for o in observed}
    jobs = [{"resource": by_name[o.policy].resource, "region": o.region,
             "account_id": ids[o.account_name], "resources": o.resources}
            for o in observed if o.resources]
    arns = c7n.resource_arns(jobs)
    matches: dict[tuple[str, str], decide.Match] = {}
    for job, found, o in zip(jobs, arns, [o for o in observed if o.resources]):
        spec = by_name[o.policy]
        for rid, arn in zip(found["ids"], found["arns"]):
            # a global resource (S3, IAM) is listed in every region: keep the first
            matches.setdefault((spec.name, arn), decide.Match(
                spec.name, arn, job["account_id"], o.region, spec.resource, str(rid), spec.severity))
    return list(matches.values()), scopes


_SECRET_KEY = re.compile(r"(?i)password|secret|token|credential|private.?key|external.?id")


def scrub_output(obj: Any, secrets: list[str]) -> Any:
    """c7n's outputs with secret-looking values masked: resources.json holds whatever the
    describe calls returned (a Lambda's environment variables, say), metadata.json the role's
    external id."""
    if isinstance(obj, dict):
        return {k: (MASK if isinstance(k, str) and _SECRET_KEY.search(k) and v else
                    {n: MASK for n in v} if k == "Variables" and isinstance(v, dict) else
                    scrub_output(v, secrets)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scrub_output(v, secrets) for v in obj]
    return redact_obj(obj, secrets)


def _copy_outputs(workdir: Path, url: str, run_id: str, summary: dict[str, Any],
                  secrets: list[str]) -> str:
    """c7n's output tree (scrubbed) and the run summary to `<url>/<run_id>/`. c7n writes
    locally and shipyard uploads: one code path for folders and S3, and no `s3://...?region=`
    output dir (c7n looks an S3 output bucket's region up with a raw HTTPS request)."""
    store = open_store(url)
    out = workdir / "out"
    for p in sorted(out.rglob("*")) if out.exists() else []:
        if not p.is_file() or p.is_symlink():
            continue
        text = p.read_text(encoding="utf-8", errors="replace")
        if p.suffix == ".json":
            text = json.dumps(scrub_output(json.loads(text), secrets), indent=2, default=str)
        else:
            text = redact(text, secrets)
        store.put(f"{run_id}/{p.relative_to(out).as_posix()}", text.encode())
    store.put(f"{run_id}/summary.json", json.dumps(summary, indent=2, default=str).encode())
    return store.uri(run_id)


def run_once(opts: RunOptions, *, notifier: Notifier | None = None, now: float | None = None,
             log: Callable[[str], None] = lambda s: None) -> RunReport:
    cfg = get_settings().custodian
    started = time.time() if now is None else now
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started)) + "-" + uuid.uuid4().hex[:6]
    notifier = notifier or get_notifier()
    with tempfile.TemporaryDirectory(prefix="shipyard-custodian-") as tmp:
        workdir = Path(tmp)
        loaded = load_current(opts.policies, workdir)
        checked = check_dir(loaded.root, with_c7n=loaded.bundle.startswith("local-"))
        require_valid(checked)
        specs = [s for s in checked.specs if opts.only is None or s.name in opts.only]
        accounts = resolve_accounts(opts.accounts, opts.regions)
        ledger = open_ledger(opts.database_url)
        locked = False
        try:
            if not opts.dryrun:  # a dry run writes nothing, so it may overlap a run
                locked = ledger.acquire(run_id, started, 2 * cfg.run_timeout + 600)
                if not locked:
                    raise TransientError("another custodian run holds the ledger lock",
                                         hint="runs must not overlap: space the schedule wider "
                                         "than a run; a crashed run's lock expires")
            report = _run_locked(opts, run_id, started, workdir, loaded.bundle, checked.specs,
                                 specs, accounts, ledger, notifier, log)
        finally:
            if locked:
                ledger.release(run_id)
            ledger.close()
    return report


def _run_locked(opts: RunOptions, run_id: str, started: float, workdir: Path, bundle_id: str,
                all_specs: list[PolicySpec], specs: list[PolicySpec], accounts: list[Account],
                ledger: Any, notifier: Notifier, log: Callable[[str], None]) -> RunReport:
    cfg = get_settings().custodian
    log(f"bundle {bundle_id}: {len(specs)} policies over {len(accounts)} account(s)")
    matches, scopes = _observe(specs, accounts, workdir, "detect",
                               [_detection_policy(s) for s in specs], dryrun=True, log=log)
    previous = ledger.load()
    bundle = {s.name for s in all_specs} if opts.only is None else None
    changes = decide.diff(previous, matches, scopes, started, bundle)
    counts = {k: sum(1 for c in changes if c.kind == k) for k in decide.KINDS}
    report = RunReport(run_id, bundle_id, opts.dryrun, counts, changes, matches)
    _remediate(report, specs, accounts, workdir, cfg.max_remediations, notifier, log)
    if opts.dryrun:
        log("dry run: nothing sent, remediated or recorded")
    else:
        rows = {c.finding.key: c.finding for c in changes}
        if opts.security_hub:
            retries = decide.hub_retries(previous, changes)
            rows |= {c.finding.key: c.finding for c in retries}
            rows = _send_to_hub(report, specs, accounts, started,
                                cfg.securityhub_refresh_days, rows, retries)
        ledger.save(rows.values())
        for n in decide.notices(changes):
            notifier.send(Notice(tool="custodian", level=n.level, title=n.title,  # type: ignore[arg-type]
                                 message=n.message, channel=cfg.channel,
                                 fields={"policy": n.policy, "severity": n.severity,
                                         "run": run_id, **n.counts}))
            report.notices += 1
    report.output = _copy_outputs(workdir, opts.output_url or cfg.output_url, run_id,
                                  report.summary(),
                                  [a.external_id for a in accounts if a.external_id])
    if not opts.dryrun:
        ledger.record_run(run_id, started, time.time(), bundle_id, False, report.summary())
    return report


def _remediate(report: RunReport, specs: list[PolicySpec], accounts: list[Account],
               workdir: Path, cap: int, notifier: Notifier, log: Callable[[str], None]) -> None:
    wanted = {s.name for s in specs if s.remediate and s.changes_resources}
    d = decide.remediation(report.matches, wanted, cap, dryrun=report.dryrun)
    report.remediation = {"would_act_on": d.count, "cap": cap, "by_policy": d.by_policy,
                          "acted_on": 0, "stopped": False}
    if d.count == 0 or report.dryrun:
        return
    if not d.allowed:
        report.remediation["stopped"] = True
        notifier.send(Notice(tool="custodian", level="failure",
                             title=f"remediation stopped: {d.count} resources > cap {cap}",
                             message="no action was taken; check the policies' filters "
                             f"({', '.join(f'{k}: {v}' for k, v in sorted(d.by_policy.items()))}) "
                             "or raise custodian.max_remediations",
                             channel=get_settings().custodian.channel,
                             fields={"run": report.run_id, **d.by_policy}))
        report.notices += 1
        return
    # c7n's own max-resources guard stops a policy whose matches grew past the cap between
    # the two runs (https://cloudcustodian.io/docs/quickstart/advanced.html#limiting-how-many-resources-custodian-affects).
    act = [{**s.data, "max-resources": cap} for s in specs if s.name in d.by_policy]
    error = ""
    try:
        acted, _ = _observe(specs, accounts, workdir, "remediate", act, dryrun=False, log=log)
    except ShipyardError as exc:  # the findings are still recorded and reported
        acted, error = [], exc.message
    report.remediation["acted_on"] = len(acted)
    log(f"remediation: acted on {len(acted)} of {d.count} resource(s)")
    if len(acted) < d.count:
        # c7n's max-resources stopped a policy, a policy failed, or resources changed between
        # the two runs: someone should look.
        report.remediation["incomplete"] = True
        notifier.send(Notice(tool="custodian", level="failure",
                             title=f"remediation incomplete: acted on {len(acted)} of {d.count}",
                             message=error or "a policy failed or matched more than the cap when "
                             "acting (c7n max-resources); see the run's remediate/ outputs",
                             channel=get_settings().custodian.channel,
                             fields={"run": report.run_id, **d.by_policy}))
        report.notices += 1


def _send_to_hub(report: RunReport, specs: list[PolicySpec], accounts: list[Account],
                 now: float, refresh_days: float, rows: dict,
                 retries: list[decide.Change]) -> dict:
    titles = {s.name: (s.data.get("description") or s.name) for s in specs}
    roles = {a.account_id: (a.role, a.external_id) for a in accounts}
    todo = decide.hub_changes(report.changes, now, refresh_days) + retries
    findings = [decide.asff(c, now, f"{c.finding.policy}: {c.finding.resource_id}",
                            titles.get(c.finding.policy, c.finding.policy)) for c in todo]
    result = import_findings(findings, roles)
    report.hub_sent, report.hub_calls, report.hub_failed = len(result.sent), result.calls, result.failed
    ids = {f["Id"]: c.finding.key for f, c in zip(findings, todo)}
    for fid in result.sent:
        key = ids[fid]
        rows[key] = replace(rows[key], hub_sent=now)
    return rows


def parse_every(text: str) -> float:
    """'90s', '15m', '1h', '1d' -> seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text or "")
    if not m or int(m.group(1)) == 0:
        raise ShipyardError(f"invalid interval {text!r}", hint="use a number and s, m, h or d: 15m, 1h")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def run_every(opts: RunOptions, interval: float, *, stop: threading.Event | None = None,
              log: Callable[[str], None] = print, max_runs: int | None = None) -> int:
    """Run, sleep, repeat until SIGTERM/SIGINT (the container's stop) or `stop` is set. A failed
    run is alerted and the loop goes on; a stop signal ends the sleep at once."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    runs = 0
    while not stop.is_set():
        try:
            rep = run_once(opts, log=log)
            log(f"run {rep.run_id}: {rep.counts}")
        except ShipyardError as exc:
            log(f"run failed: {exc}")
            get_notifier().send(Notice(tool="custodian", level="failure", title="custodian run failed",
                                       message=str(exc), channel=get_settings().custodian.channel))
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        stop.wait(interval)
    return runs
