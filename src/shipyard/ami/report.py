"""What the AMI commands print: prune and release results as rich tables or JSON, refresh
progress as one line per change. Shared by the CLI and the demo."""

from __future__ import annotations

import json
from typing import Any, Callable

from shipyard.ami.model import RefreshStatus
from shipyard.ami.runner import PruneResult, ReleasePlan, ReleaseResult
from shipyard.console import console, err_console, print_table


def print_prune(result: PruneResult, *, as_json: bool) -> None:
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


def progress_printer() -> Callable[[RefreshStatus], None]:
    last: dict[str, Any] = {}

    def show(st: RefreshStatus) -> None:
        key = (st.status, st.percent, st.instances_to_update)
        if last.get("key") != key:
            last["key"] = key
            todo = "" if st.instances_to_update is None else f", {st.instances_to_update} to update"
            err_console.print(f"refresh {st.refresh_id[:8]}: {st.status} {st.percent or 0}%{todo}",
                              highlight=False)
    return show


def print_release(result: ReleaseResult, *, as_json: bool) -> None:
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
    if result.cleanup_error:
        err_console.print(f"[yellow]clean-up failed[/] (the release stands): {result.cleanup_error}")


def print_release_plan(plan: ReleasePlan) -> None:
    if plan.unchanged:
        console.print(f"nothing to release: {plan.template_name} v{plan.default_version} already "
                      f"runs {plan.image.image_id}")
        return
    console.print(f"would release [bold]{plan.image.image_id}[/] (created "
                  f"{plan.image.created.isoformat(timespec='seconds')}) to [bold]{plan.group}[/]")
    console.print(f"1. new version of {plan.template_name} ({plan.template_id}): "
                  f"v{plan.default_version}'s data with ImageId changed:")
    console.print_json(json.dumps(plan.data, default=str))
    console.print("2. StartInstanceRefresh to that numbered version, Preferences:")
    console.print_json(json.dumps(plan.preferences))
    console.print("3. on success: default version = the new one; prune versions, then images")
