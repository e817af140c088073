"""`shipyard ami ...`: a thin client of shipyard.ami (build, prune, release, demo)."""

from __future__ import annotations

import json
import signal
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from shipyard.ami.model import ReleaseOptions, parse_checkpoints, parse_duration
from shipyard.console import console, err_console
from shipyard.errors import InputError
from shipyard.redact import redact
from shipyard.settings import get_settings

# The runner, the AWS adapter, the build and the demo import boto3 (and moto): they are
# imported inside the commands that use them, so `shipyard --help` stays fast.

app = typer.Typer(help="ami: immutable releases (Packer AMIs, bounded images and launch-template "
                  "versions, instance refreshes that roll back).", no_args_is_help=True)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _settings() -> Any:
    return get_settings().ami


def _runner(**kwargs: Any) -> Any:
    from shipyard.ami.aws import AmiAws  # boto3: on use (see above)
    from shipyard.ami.runner import AmiRunner  # boto3 too: on use

    s = _settings()
    return AmiRunner(AmiAws.connect(region=s.region, role_arn=s.role_arn), channel=s.channel,
                     branch_tag=s.branch_tag, **kwargs)


@app.command("prune")
def prune_cmd(
    branch: str = typer.Option(..., "--branch", "-b", help="The images' branch tag."),
    keep: int = typer.Option(None, "--keep", "-k", help="Newest images to keep (at least 2; "
                             "default ami.keep = 5). In-use and protected images are kept too."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would go and why each "
                                 "kept image is kept; change nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan and results as JSON."),
) -> None:
    """Deregister a branch's old images, then delete their snapshots no other image uses."""
    if not branch.strip():
        raise InputError("--branch must not be empty")
    keep = _settings().keep if keep is None else keep
    if keep < 2:
        raise InputError(f"--keep must be at least 2 (got {keep})",
                         hint="keep the previous release so there is something to roll back to")
    from shipyard.ami.report import print_prune  # the runner's types: on use (see above)

    runner = _runner()
    result = runner.prune(branch, keep, dry_run=dry_run)
    print_prune(result, as_json=as_json)
    if not as_json and runner.aws.checked:
        err_console.print(f"in use means used by: {', '.join(runner.aws.checked)}", style="dim")
    for note in runner.aws.notes:
        err_console.print(f"[yellow]note:[/] {note}")
    raise typer.Exit(0 if result.ok else 1)


@app.command("release")
def release_cmd(
    branch: str = typer.Option(..., "--branch", "-b", help="Release this branch's newest image."),
    launch_template: str = typer.Option(..., "--launch-template", "-t", help="lt-... id or name."),
    asg: str = typer.Option(..., "--asg", help="The Auto Scaling group to refresh."),
    keep: int = typer.Option(None, "--keep", help="Images to keep after a success (default ami.keep)."),
    keep_versions: int = typer.Option(None, "--keep-versions", help="Launch-template versions "
                                      "to keep (at least 2; default ami.keep_versions = 5)."),
    timeout: str = typer.Option(None, "--timeout", help="How long the refresh may take: 30m, 1h, "
                                "900s (default ami.timeout)."),
    on_timeout: str = typer.Option(None, "--on-timeout", help="rollback (default) or cancel."),
    min_healthy: int = typer.Option(None, "--min-healthy", help="MinHealthyPercentage (default 90)."),
    warmup: int = typer.Option(None, "--warmup", help="InstanceWarmup seconds (default 60)."),
    checkpoints: str = typer.Option(None, "--checkpoints", help="Pause at these percentages, "
                                    "e.g. 20,50,100 (CheckpointDelay: ami.checkpoint_delay)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check everything and print the new "
                                 "version's data and the refresh request; change nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Roll the branch's newest image out to an ASG, with rollback.

    New launch-template version (the default's data, image changed) -> instance refresh to that
    numbered version with AutoRollback -> on success it becomes the default, then old versions
    and old images are pruned. Exit 0 released (or nothing to do), 1 failed, 4 rolled back,
    5 rollback failed, 6 cancelled, 7 timed out (then rolled back or cancelled).
    """
    from shipyard.ami.report import print_release, print_release_plan, progress_printer  # on use (see above)

    s = _settings()
    try:
        opts = ReleaseOptions(
            branch=branch, launch_template=launch_template, asg=asg,
            keep_images=s.keep if keep is None else keep,
            keep_versions=s.keep_versions if keep_versions is None else keep_versions,
            timeout=parse_duration(timeout or s.timeout), on_timeout=on_timeout or s.on_timeout,
            min_healthy=s.min_healthy if min_healthy is None else min_healthy,
            warmup=s.warmup if warmup is None else warmup,
            checkpoints=parse_checkpoints(checkpoints), checkpoint_delay=s.checkpoint_delay,
            poll_interval=s.poll_interval)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(f"--{'-'.join(map(str, first['loc'])).replace('_', '-')}: {first['msg']}") from None
    if dry_run:
        plan = _runner().plan_release(opts)
        if as_json:
            console.print_json(json.dumps(plan.to_dict(), default=str))
        else:
            print_release_plan(plan)
        return
    # A CI job cancelled with SIGTERM stops like Ctrl-C: the runner says which refresh goes on.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = _runner(on_progress=progress_printer()).release(opts)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print_release(result, as_json=as_json)
    raise typer.Exit(result.outcome.exit_code)


@app.command("build")
def build_cmd(
    template: Path = typer.Option(..., "--template", help="Packer template (HCL or JSON) that "
                                  "declares a `branch` variable and tags the AMI with it."),
    branch: str = typer.Option(..., "--branch", "-b", help="Passed as -var branch=B; the AMI must carry it."),
    packer: str = typer.Option("packer", "--packer", help="The packer executable."),
) -> None:
    """Run `packer build -machine-readable`, then check the AMI's branch and timestamp tags."""
    from shipyard.ami.build import run_packer, verify_images  # boto3: on use (see above)

    s = _settings()
    started = datetime.now(timezone.utc)

    def show(ln: Any) -> None:
        if ln.type == "ui" and len(ln.data) >= 2:
            err_console.print(redact(ln.data[1]), highlight=False, markup=False)

    images = run_packer(template, branch, packer=packer, on_line=show)
    verify_images(images, branch, started, datetime.now(timezone.utc),
                  branch_tag=s.branch_tag, timestamp_tag=s.timestamp_tag)
    for region, ami in images:
        console.print(f"{region}: {ami}")


@app.command("schema")
def schema_cmd() -> None:
    """JSON Schema of a release's options (what `release` validates)."""
    console.print_json(json.dumps(ReleaseOptions.model_json_schema()))


@app.command("demo")
def demo_cmd() -> None:
    """The whole flow on an in-process AWS stand-in (moto): bake, prune, release, roll back."""
    from shipyard.ami.demo import run_demo  # moto: on use (see above)

    raise typer.Exit(run_demo())
