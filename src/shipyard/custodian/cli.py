"""`shipyard custodian ...`: a thin client of shipyard.custodian's library API.

The library is imported inside each command: it pulls in boto3 (~0.3 s), which `shipyard
--help` and the other tools' commands should not pay for.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from shipyard.console import console, err_console, print_table
from shipyard.errors import InputError

if TYPE_CHECKING:
    from shipyard.custodian.decide import Finding
    from shipyard.custodian.runner import RunReport

app = typer.Typer(help="custodian: Cloud Custodian policies as code over every account; findings "
                  "to a ledger, Slack and Security Hub.", no_args_is_help=True)


def _log(line: str) -> None:
    err_console.print(line, highlight=False, markup=False)


def _when(ts: float | None) -> str:
    return time.strftime("%m-%d %H:%M", time.gmtime(ts)) if ts else ""


@app.command("validate")
def validate_cmd(policies: Path = typer.Argument(..., help="Folder of c7n policy files (*.yml).")) -> None:
    """c7n's schema check plus shipyard's rules (severity, remediate); file:line on errors."""
    from shipyard.custodian.bundle import check_dir  # start-up cost: see the module docstring

    checked = check_dir(policies)
    for p in checked.problems:
        err_console.print(str(p), highlight=False, markup=False, soft_wrap=True)
    if checked.problems:
        raise InputError(f"{len(checked.problems)} problem(s) in {policies}",
                         hint="fix the lines above (docs/custodian.md lists the rules)")
    console.print(f"{len(checked.specs)} policies in {len(checked.files)} files: valid")


@app.command("sync")
def sync_cmd(
    src: Path = typer.Option(..., "--from", help="Folder of policy files (your git checkout)."),
    dest: str = typer.Option(..., "--to", help="s3://bucket/prefix or a folder."),
) -> None:
    """Validate, upload an immutable bundle, then point current.json at it (the CI step)."""
    from shipyard.custodian.bundle import sync  # start-up cost: see the module docstring

    r = sync(src, dest)
    state = "uploaded" if r.uploaded else "already there"
    console.print(f"bundle {r.bundle} ({r.files} files, {state}); current: {r.current}")


def _print_report(rep: "RunReport", as_json: bool) -> None:
    if as_json:
        data = rep.summary() | {"changes": [{"kind": c.kind, "policy": c.finding.policy,
                                             "arn": c.finding.arn, "severity": c.finding.severity}
                                            for c in rep.changes]}
        typer.echo(json.dumps(data, indent=2))
        return
    # the resource's id keeps the table readable; --json and `findings --json` give the ARNs
    rows = [(c.kind, c.finding.policy, c.finding.severity, c.finding.account_id, c.finding.region,
             c.finding.resource_id) for c in rep.changes]
    print_table(f"run {rep.run_id} (bundle {rep.bundle}{', dry run' if rep.dryrun else ''})",
                ["change", "policy", "severity", "account", "region", "resource"], rows)
    r = rep.remediation
    console.print(f"new {rep.counts['new']}, escalated {rep.counts['escalated']}, still failing "
                  f"{rep.counts['still']}, resolved {rep.counts['resolved']}"
                  + (f", retired {rep.counts['retired']}" if rep.counts.get("retired") else "")
                  + f"; notices "
                  f"{rep.notices}; Security Hub {rep.hub_sent} in {rep.hub_calls} call(s); "
                  f"remediated {r.get('acted_on', 0)}"
                  + (f" (STOPPED: {r['would_act_on']} > cap {r['cap']})" if r.get("stopped") else ""))
    for line in rep.hub_failed:
        err_console.print(f"Security Hub: {line}", highlight=False, markup=False)
    console.print(f"outputs: {rep.output}")


@app.command("run")
def run_cmd(
    policies: str = typer.Option(..., "--policies", help="s3://bucket/prefix (its current bundle) or a folder."),
    accounts: str = typer.Option(None, "--accounts", help="c7n-org accounts.yml, a path or s3://bucket/key (default: the caller's account)."),
    regions: list[str] = typer.Option(None, "--regions", "-r", help="Region(s); repeat. Default: each account's, else custodian.regions."),
    dryrun: bool = typer.Option(False, "--dryrun", help="Find only: no notice, no Security Hub, no remediation, no ledger change."),
    security_hub: bool = typer.Option(False, "--security-hub", help="Import findings into each account's Security Hub."),
    every: str = typer.Option(None, "--every", help="Run in a loop (15m, 1h, 1d) until SIGTERM."),
    output: str = typer.Option(None, "--output", help="Run folder root: a folder or s3://bucket/prefix (default custodian.output_url)."),
    database_url: str = typer.Option(None, "--database-url", help="Ledger: SQLite path or postgresql:// URL."),
    as_json: bool = typer.Option(False, "--json", help="Print the run report as JSON."),
) -> None:
    """Run the current policies over every account and region; report what changed."""
    # start-up cost: see the module docstring
    from shipyard.custodian.runner import RunOptions, parse_every, run_every, run_once

    opts = RunOptions(policies, accounts, list(regions or []), dryrun, security_hub, output, database_url)
    if every:
        interval = parse_every(every)
        runs = run_every(opts, interval, log=_log)
        err_console.print(f"stopped after {runs} run(s)")
        return
    _print_report(run_once(opts, log=_log), as_json)


def _finding_dict(f: "Finding") -> dict:
    return {"policy": f.policy, "arn": f.arn, "account_id": f.account_id, "region": f.region,
            "resource_type": f.resource_type, "resource_id": f.resource_id, "severity": f.severity,
            "state": f.state, "first_seen": f.first_seen, "last_seen": f.last_seen,
            "resolved_at": f.resolved_at}


def print_findings(rows: "list[Finding]", as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([_finding_dict(f) for f in rows], indent=2))
        return
    print_table("findings", ["policy", "severity", "state", "account", "region", "resource", "since"],
                [(f.policy, f.severity, f.state, f.account_id, f.region, f.resource_id,
                  _when(f.first_seen if f.state == "open" else f.resolved_at)) for f in rows])


@app.command("findings")
def findings_cmd(
    open_only: bool = typer.Option(False, "--open", help="Only findings still failing."),
    as_json: bool = typer.Option(False, "--json", help="JSON for scripts."),
    database_url: str = typer.Option(None, "--database-url", help="Ledger: SQLite path or postgresql:// URL."),
) -> None:
    """Findings from the ledger."""
    from shipyard.custodian.ledger import open_ledger  # start-up cost: see the module docstring

    ledger = open_ledger(database_url)
    try:
        print_findings(list(ledger.load(open_only=open_only).values()), as_json)
    finally:
        ledger.close()


@app.command("plan")
def plan_cmd(
    policies: Path = typer.Argument(Path("."), help="Folder of policy files in a git checkout."),
    base: str = typer.Option(..., "--base", help="Git ref to compare with (e.g. origin/main)."),
    accounts: str = typer.Option(None, "--accounts", help="c7n-org accounts.yml, a path or s3://bucket/key."),
    regions: list[str] = typer.Option(None, "--regions", "-r", help="Region(s); repeat."),
    database_url: str = typer.Option(None, "--database-url", help="Ledger to compare with."),
    as_json: bool = typer.Option(False, "--json", help="JSON for scripts (a PR comment bot)."),
) -> None:
    """Dry-run only the policies changed since --base: which resources they would now match."""
    from shipyard.custodian.review import plan  # start-up cost: see the module docstring
    from shipyard.custodian.runner import RunOptions  # start-up cost: see the module docstring

    names, rep = plan(policies, base, RunOptions(str(policies), accounts, list(regions or []),
                                                 database_url=database_url), _log)
    effects = {"new": "would match", "still": "already open", "escalated": "already open",
               "resolved": "would resolve", "retired": "would retire"}
    rows = [(effects[c.kind], c.finding.policy, c.finding.severity, c.finding.account_id,
             c.finding.region, c.finding.arn) for c in (rep.changes if rep else [])]
    if as_json:
        typer.echo(json.dumps({"base": base, "changed": sorted(names), "effects": [
            dict(zip(("effect", "policy", "severity", "account", "region", "arn"), r)) for r in rows]},
            indent=2))
        return
    if rep is None:
        console.print(f"no policy changed since {base}")
        return
    console.print(f"changed since {base}: {', '.join(sorted(names))}")
    print_table(f"plan against {base} (dry run)", ["effect", "policy", "severity", "account",
                                                   "region", "resource"],
                [r[:5] + (r[5].rsplit(":", 1)[-1],) for r in rows])


@app.command("demo")
def demo_cmd(
    policies: Path = typer.Option(None, "--policies", help="Policy folder (default: examples/custodian/policies)."),
) -> None:
    """No AWS account needed: moto in-process, a public bucket and an untagged instance, two runs."""
    from shipyard.custodian.ledger import open_ledger  # start-up cost: see the module docstring
    from shipyard.custodian.review import demo  # start-up cost, and moto: see the docstring

    first, second, ledger_path = demo(policies, _log)
    _print_report(first, False)
    console.print("[bold]second run[/] (after remediation):")
    _print_report(second, False)
    ledger = open_ledger(ledger_path)
    try:
        print_findings(list(ledger.load().values()), False)
    finally:
        ledger.close()
