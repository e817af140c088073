"""`shipyard photon ...` and the `photon --file deployment.json [--terminate]` script.

Thin: parse, call shipyard.photon.runner.Photon, print. Errors are ShipyardErrors, mapped by
the umbrella's main() (message + fix, no traceback).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from shipyard.console import console, err_console, print_error, print_table, setup_logging
from shipyard.errors import InputError, ShipyardError
from shipyard.photon.model import load, load_names, schema
from shipyard.photon.runner import Outcome, Photon

app = typer.Typer(help="photon: one file, one command deployments (local router or AWS Fargate).",
                  no_args_is_help=True)

FILE = typer.Option(None, "--file", "-f", help="The deployment file (deployment.json).")
# apply's options, shared by `shipyard photon apply` and the `photon` script.
APPLY_FILE = typer.Option(..., "--file", "-f", help="The deployment file.")
TERMINATE = typer.Option(False, "--terminate", help="Delete everything this file made for its env.")
NO_ROLLBACK = typer.Option(False, "--no-rollback", help="Keep a failed release for debugging.")
FORCE = typer.Option(False, "--force", help="Start a new release even when nothing changed.")
AS_JSON = typer.Option(False, "--json", help="Print the outcome as JSON.")
SERVICE = typer.Option(None, "--service", help="Service name (instead of --file).")
ENV = typer.Option(None, "--env", help="Environment name (instead of --file).")


class _Progress:
    """Progress lines: each traffic step on its own line; the ticks on one live status line."""

    def __init__(self) -> None:
        self.status: Any = None

    def __call__(self, e: dict[str, Any]) -> None:
        if e["kind"] == "start":
            err_console.print(f"starting {e['release']} ({escape(str(e['version']))}) behind {e['endpoint']}")
        elif e["kind"] == "step":
            err_console.print(f"step {e['step']}/{e['steps']}: {e['percent']}% of requests to the new release"
                              + (f", watching the gates for {e['bake']:g}s" if e["bake"] else ""))
        elif e["kind"] == "tick" and err_console.is_terminal:
            rate = "n/a" if e["error_rate"] is None else f"{e['error_rate']:.1%}"
            text = (f"{e['phase']} · {e['percent']}% new · error rate {rate} (n={e['requests']}) · "
                    f"{e['time_left']:.0f}s left")
            if self.status is None:
                self.status = err_console.status(text)
                self.status.start()
            self.status.update(text)

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()


def _sigterm_is_interrupt() -> None:
    """SIGTERM (CI cancelling a job) rolls the release back like Ctrl-C does."""

    def raise_interrupt(_s: int, _f: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)


def _names(file: Optional[Path], service: Optional[str], env: Optional[str]) -> tuple[str, str]:
    if file is not None:
        return load_names(file)
    if service and env:
        return service, env
    raise InputError("say which deployment: --file deployment.json, or --service and --env")


def _print_outcome(o: Outcome, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(o.__dict__))
    elif o.status == "deployed":
        console.print(f"[green]deployed[/] {o.service}/{o.env} {o.release} ({escape(str(o.version))}): {o.endpoint}")
    elif o.status == "unchanged":
        console.print(f"[green]no change[/]: {escape(o.reason or '')}; {o.endpoint}")
    elif o.status == "terminated":
        console.print(f"[green]terminated[/] {o.service}/{o.env}")
    elif o.status in ("nothing", "asked"):
        console.print(escape(o.reason or o.status))
    else:
        err_console.print(f"[bold red]{o.status.replace('_', ' ')}[/] {o.service}/{o.env} {o.release}: "
                          f"{escape(o.reason or '')}")
    if not o.ok and o.status != "asked":
        raise typer.Exit(1)


def run_apply(file: Path, terminate: bool, no_rollback: bool, force: bool, as_json: bool) -> None:
    dep = None if terminate else load(file)
    progress = _Progress()
    photon = Photon(progress=progress)
    _sigterm_is_interrupt()
    try:
        if dep is None:
            out = photon.terminate(*load_names(file))
        else:
            out = photon.apply(dep, rollback=not no_rollback, force=force)
    finally:
        progress.close()
    _print_outcome(out, as_json)


@app.command("apply")
def apply_cmd(file: Path = APPLY_FILE, terminate: bool = TERMINATE, no_rollback: bool = NO_ROLLBACK,
              force: bool = FORCE, as_json: bool = AS_JSON) -> None:
    """Create or update the deployment (or --terminate it); exits 1 when rolled back."""
    run_apply(file, terminate, no_rollback, force, as_json)


@app.command("plan")
def plan_cmd(file: Path = typer.Option(..., "--file", "-f", help="The deployment file."),
             terminate: bool = typer.Option(False, "--terminate", help="Plan the terminate instead."),
             as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON.")) -> None:
    """What apply (or --terminate) would change, without changing anything."""
    photon = Photon()
    plan = photon.terminate_plan(*load_names(file)) if terminate else photon.plan(load(file))
    if as_json:
        console.print_json(json.dumps(plan.to_dict(), default=str))
    else:
        console.print(escape(plan.render()), highlight=False)


@app.command("status")
def status_cmd(file: Optional[Path] = FILE, service: Optional[str] = SERVICE, env: Optional[str] = ENV,
               as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The endpoint, the live release, a rollout in progress and the history."""
    s = Photon().status(*_names(file, service, env))
    if as_json:
        console.print_json(json.dumps(s, default=str))
        return
    live = s["live"]
    console.print(f"[bold]{s['service']}/{s['env']}[/] ({s['target']}) {s['endpoint'] or '(no endpoint)'}")
    console.print("live: " + (f"{live['release']} {escape(live['version'])} since {live['since']}"
                              + ("" if live["running"] else " [red](not running)[/]") if live else "none"))
    if s["rollout"]:
        r = s["rollout"]
        console.print(f"rollout: {r['release']} {r['phase']} step {r['step']}/{r['steps']} at {r['percent']}%"
                      + (f" ({escape(r['reason'])})" if r["reason"] else ""))
    print_table("history", ["time", "event", "release", "detail"],
                [(h["time"], h["event"], h.get("release"), h.get("reason") or h.get("version") or "")
                 for h in s["history"][-10:]])


@app.command("promote")
def promote_cmd(file: Optional[Path] = FILE, service: Optional[str] = SERVICE, env: Optional[str] = ENV) -> None:
    """Send all traffic to the release being rolled out (or held) now, without the remaining bakes."""
    _print_outcome(Photon().operate(*_names(file, service, env), "promote"), False)


@app.command("rollback")
def rollback_cmd(file: Optional[Path] = FILE, service: Optional[str] = SERVICE, env: Optional[str] = ENV) -> None:
    """Roll back the rollout in progress, or go back to the previous release."""
    _print_outcome(Photon(progress=_Progress()).operate(*_names(file, service, env), "rollback"), False)


@app.command("logs")
def logs_cmd(file: Optional[Path] = FILE, service: Optional[str] = SERVICE, env: Optional[str] = ENV,
             release: Optional[str] = typer.Option(None, "--release", help="A release id (default: the live one)."),
             follow: bool = typer.Option(False, "--follow", help="Keep printing new lines (Ctrl-C stops)."),
             as_json: bool = typer.Option(False, "--json", help="Print the JSON lines as they are.")) -> None:
    """A release's output: JSON lines kept per release (local), CloudWatch Logs (aws)."""
    try:
        for rec in Photon().logs(*_names(file, service, env), release, follow=follow):
            if as_json:
                sys.stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")
                continue
            console.print(f"[dim]{rec['time']} {rec.get('release', '')} {rec['stream']}[/] {escape(rec['message'])}",
                          highlight=False)
    except KeyboardInterrupt:
        return


@app.command("ls")
def ls_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every service and environment photon manages from this folder."""
    rows = Photon().ls()
    if as_json:
        console.print_json(json.dumps(rows))
        return
    print_table(f"{len(rows)} environment(s)", ["service", "env", "target", "endpoint", "version", "rollout"],
                [(r["service"], r["env"], r["target"], r["endpoint"], r["version"], r["rollout"] or "") for r in rows])


@app.command("schema")
def schema_cmd() -> None:
    """Print the deployment file's JSON Schema (`> deployment.schema.json`)."""
    sys.stdout.write(json.dumps(schema(), indent=2) + "\n")


@app.command("demo")
def demo_cmd(keep: bool = typer.Option(False, "--keep", help="Leave the demo env running at the end.")) -> None:
    """A canary on the local target: v1, then v2 at 10% while a client loop runs, then 100%."""
    from shipyard.photon.demo import run_demo  # imported on use: the demo pulls in its client loop

    run_demo(keep=keep)


# ---- the `photon` console script: `photon --file deployment.json [--terminate]` ----------
script = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@script.command()
def photon_cmd(file: Path = APPLY_FILE, terminate: bool = TERMINATE, no_rollback: bool = NO_ROLLBACK,
              force: bool = FORCE, as_json: bool = AS_JSON) -> None:
    """photon --file deployment.json [--terminate]: create/update, or delete, one deployment.
    More commands: `shipyard photon --help`."""
    run_apply(file, terminate, no_rollback, force, as_json)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `photon` script, with the umbrella's error mapping."""
    setup_logging(False)
    try:
        script(args=argv, prog_name="photon")
    except ShipyardError as exc:
        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
