"""`shipyard site ...`: a thin client of shipyard.site's library API (docs/site.md)."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shipyard.console import console, err_console, print_table
from shipyard.errors import ConfigError, InputError, did_you_mean
from shipyard.settings import SiteSettings, get_settings
from shipyard.site import demo as demo_site
from shipyard.site import runner
from shipyard.site.model import Release, Summary
from shipyard.site.serve import make_server, serve_forever

app = typer.Typer(
    help="site: deploy a static site to S3 + CloudFront (or a folder): diff upload, headers, "
         "invalidation, verify, releases, rollback, previews per branch (docs/site.md).",
    no_args_is_help=True,
    add_completion=False,
)

TO = typer.Option(None, "--to", help="s3://bucket or s3://bucket/prefix, or a local folder (else site.target).")
TARGET = typer.Argument(None, help="s3://bucket or s3://bucket/prefix, or a local folder (else site.target).")
DIST = typer.Option(None, "--distribution", help="CloudFront distribution ID to invalidate (else site.distribution).")
BRANCH = typer.Option(None, "--branch", help="Preview of this branch, under previews/<branch>/.")
URL = typer.Option(None, "--url", help="The site's URL to verify through (else site.url, else the distribution's domain).")
AS_JSON = typer.Option(False, "--json", help="Print a JSON summary (for scripts).")


class _Bars:
    """One rich progress bar per phase on stderr (upload, restore, verify, invalidation)."""

    def __init__(self, quiet: bool) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=err_console, disable=quiet or not err_console.is_terminal)
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> "_Bars":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def __call__(self, phase: str, done: int, total: int) -> None:
        key = phase.split()[0]
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(phase, total=total or None)
        self.progress.update(self.tasks[key], completed=done, description=phase)


def _target(given: Optional[str]) -> str:
    target = given or get_settings().site.target
    if not target:
        raise ConfigError("no target given", hint="pass s3://bucket[/prefix] or a folder, or set site.target in shipyard.toml")
    return target


def _report(summary: Summary, as_json: bool, what: str) -> None:
    data = summary.to_dict()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    rows = [("target", data["target"]), ("release", summary.release or ""),
            ("uploaded", len(summary.uploaded)), ("deleted", len(summary.deleted)),
            ("unchanged", summary.unchanged)]
    if summary.invalidation_id or summary.invalidation_paths:
        rows.append(("invalidation", f"{summary.invalidation_id or '(dry run)'}: {' '.join(summary.invalidation_paths[:8])}"
                     + (" ..." if len(summary.invalidation_paths) > 8 else "")))
    if summary.verified is not None:
        rows.append(("verified", f"{summary.verified} paths through {data['url']}"))
    elif summary.url:
        rows.append(("url", data["url"]))
    rows.append(("seconds", f"{summary.seconds:.2f}"))
    print_table(what, ["", ""], rows)
    for line in summary.skipped:
        err_console.print(f"[yellow]skipped:[/] {line}", highlight=False)
    for line in summary.warnings:
        err_console.print(f"[yellow]warning:[/] {line}", highlight=False)


@app.command()
def deploy(
    directory: str = typer.Argument(..., help="The built site folder (e.g. ./public, ./dist)."),
    to: Optional[str] = TO, distribution: Optional[str] = DIST, branch: Optional[str] = BRANCH,
    delete: bool = typer.Option(True, "--delete/--keep", help="Delete remote files that are gone locally (default) or keep them."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (uploads, deletes, invalidation paths); change nothing."),
    url: Optional[str] = URL,
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip fetching the changed paths through the site URL."),
    as_json: bool = AS_JSON,
) -> None:
    """Upload what changed, delete what is gone, invalidate, wait, verify, record a release."""
    with _Bars(as_json) as bars:
        summary = runner.deploy(directory, _target(to), distribution=distribution, branch=branch, delete=delete,
                                dry_run=dry_run, url=url, check=not no_verify, progress=bars)
    if dry_run and not as_json:
        for key in summary.uploaded:
            console.print(f"upload {key}", highlight=False)
        for key in summary.deleted:
            console.print(f"delete {key}", highlight=False)
    _report(summary, as_json, "site deploy" + (" (dry run)" if dry_run else ""))


@app.command()
def releases(target: Optional[str] = TARGET, branch: Optional[str] = BRANCH, as_json: bool = AS_JSON) -> None:
    """List the releases recorded in the target (newest last)."""
    site = runner.open_site(_target(target), branch=branch)
    history = runner.releases(site)
    if as_json:
        typer.echo(json.dumps([{k: v for k, v in r.model_dump().items() if k != "files"} | {"files": len(r.files)}
                               for r in history], indent=2))
        return
    print_table(f"releases in {site.target.url}{site.prefix}",
                ["release", "time", "git", "files", "uploaded", "deleted", "invalidation", "rollback of"],
                runner.release_rows(history))


@app.command()
def rollback(
    target: Optional[str] = TARGET,
    release: str = typer.Option(..., "--to", help="The release id to restore (see `shipyard site releases`)."),
    distribution: Optional[str] = DIST, branch: Optional[str] = BRANCH, url: Optional[str] = URL,
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip verifying through the site URL."),
    as_json: bool = AS_JSON,
) -> None:
    """Restore exactly the file set of a release, delete the rest, invalidate, verify."""
    with _Bars(as_json) as bars:
        summary = runner.rollback(_target(target), release, distribution=distribution, branch=branch, url=url,
                                  check=not no_verify, progress=bars)
    _report(summary, as_json, f"site rollback to {release}")


@app.command()
def cleanup(target: Optional[str] = TARGET, branch: str = typer.Option(..., "--branch", help="The merged branch whose preview to remove."),
            distribution: Optional[str] = DIST, as_json: bool = AS_JSON) -> None:
    """Remove a branch's preview (files, releases, cached paths)."""
    with _Bars(as_json) as bars:
        summary = runner.cleanup(_target(target), branch, distribution=distribution, progress=bars)
    _report(summary, as_json, f"site cleanup {branch}")


@app.command()
def serve(
    where: str = typer.Argument(..., help="A built folder, a folder deployed to, or s3://bucket (or s3://bucket/prefix)."),
    port: int = typer.Option(8000, "--port", help="Port on 127.0.0.1 (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
) -> None:
    """Serve a site on localhost with the headers it has (or will have) in S3."""
    server = make_server(where, get_settings().site, host=host, port=port)
    err_console.print(f"serving {where} on http://{host}:{server.server_address[1]}/ (Ctrl-C stops)", highlight=False)
    serve_forever(server)


@app.command()
def schema(what: str = typer.Argument("release", help="release (a manifest) or settings (the [site] section).")) -> None:
    """Print the JSON Schema of a release manifest or of the [site] settings."""
    models = {"release": Release, "settings": SiteSettings}
    if what not in models:
        raise InputError(f"no schema {what!r}", hint=did_you_mean(what, models) or "release or settings")
    typer.echo(json.dumps(models[what].model_json_schema(), indent=2))


@app.command()
def demo(folder: str = typer.Option("site-demo", "--folder", help="Where to write the demo site and its bucket folder."),
         as_json: bool = AS_JSON) -> None:
    """Deploy the embedded demo site to a local folder (no cloud account), twice: the second
    deploy uploads nothing."""
    source, bucket = demo_site.write(folder)
    first = runner.deploy(str(source), str(bucket), check=False)
    second = runner.deploy(str(source), str(bucket), check=False)
    if as_json:
        typer.echo(json.dumps({"first": first.to_dict(), "second": second.to_dict()}, indent=2))
        return
    _report(first, False, "first deploy")
    _report(second, False, "second deploy (nothing changed)")
    console.print(f"next: shipyard site serve {bucket}", highlight=False)
