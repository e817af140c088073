"""`shipyard ami ...`: a thin client of shipyard.ami (build, prune, release, demo)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from shipyard.console import console, err_console, print_table
from shipyard.errors import InputError

app = typer.Typer(help="ami: immutable releases (Packer AMIs, bounded images and launch-template "
                  "versions, instance refreshes that roll back).", no_args_is_help=True)


def _settings() -> Any:
    from shipyard.settings import get_settings

    return get_settings().ami


def _runner(**kwargs: Any) -> Any:
    from shipyard.ami.aws import AmiAws
    from shipyard.ami.runner import AmiRunner

    s = _settings()
    return AmiRunner(AmiAws.connect(region=s.region, role_arn=s.role_arn), channel=s.channel,
                     branch_tag=s.branch_tag, **kwargs)


def print_prune(result: Any, *, as_json: bool) -> None:
    plan = result.plan
    if as_json:
        out = plan.to_dict()
        out.update(dry_run=result.dry_run, deregistered=result.deregistered,
                   snapshots_deleted=result.snapshots_deleted,
                   failed=[{"id": i, "why": w} for i, w in result.failed])
        console.print_json(json.dumps(out, default=str))
        return
    verb = "would be deleted" if result.dry_run else "deleted"
    print_table(f"images of branch {plan.branch} (keep {plan.keep}): {len(plan.to_delete)} {verb}",
                ["image", "created", "action", "why kept", "snapshots"], plan.rows())
    for image_id, why in result.failed:
        err_console.print(f"[red]failed[/] {image_id}: {why}")


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
    keep = _settings().keep if keep is None else keep
    if keep < 2:
        raise InputError(f"--keep must be at least 2 (got {keep})",
                         hint="keep the previous release so there is something to roll back to")
    runner = _runner()
    result = runner.prune(branch, keep, dry_run=dry_run)
    print_prune(result, as_json=as_json)
    for note in runner.aws.notes:
        err_console.print(f"[yellow]note:[/] {note}")
    raise typer.Exit(0 if result.ok else 1)


def _show_progress() -> Any:
    last: dict[str, Any] = {}

    def show(st: Any) -> None:
        key = (st.status, st.percent, st.instances_to_update)
        if last.get("key") != key:
            last["key"] = key
            todo = "" if st.instances_to_update is None else f", {st.instances_to_update} to update"
            err_console.print(f"refresh {st.refresh_id[:8]}: {st.status} {st.percent or 0}%{todo}",
                              highlight=False)
    return show


def print_release(result: Any, *, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(result.to_dict(), default=str))
        return
    style = "green" if result.outcome.exit_code == 0 else "red"
    console.print(f"[{style}]{result.outcome.value}[/]: {result.image_id} via "
                  f"{result.template_id} v{result.version}"
                  + (f", refresh {result.refresh_id}" if result.refresh_id else "")
                  + (f" ({result.message})" if result.message else ""))
    if result.versions is not None:
        print_table("launch-template versions", ["version", "action", "why kept"],
                    [*((v, "keep", "; ".join(w)) for v, w in sorted(result.versions.keep_versions.items())),
                     *((v, "deleted", "") for v in result.versions.delete)])
    if result.prune is not None:
        print_prune(result.prune, as_json=False)


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
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """New launch-template version with the newest image -> instance refresh with AutoRollback
    -> default version -> prune versions, then images. Exit 0 released (or nothing to do),
    1 failed, 4 rolled back, 5 rollback failed, 6 cancelled, 7 timed out."""
    from shipyard.ami.model import ReleaseOptions, parse_checkpoints, parse_duration

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
    result = _runner(on_progress=_show_progress()).release(opts)
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
    from shipyard.ami.build import run_packer, verify_images
    from shipyard.redact import redact

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
    from shipyard.ami.model import ReleaseOptions

    console.print_json(json.dumps(ReleaseOptions.model_json_schema()))


@app.command("demo")
def demo_cmd() -> None:
    """The whole flow on an in-process AWS stand-in (moto): bake, prune, release, roll back."""
    from shipyard.ami.demo import run_demo

    raise typer.Exit(run_demo())
