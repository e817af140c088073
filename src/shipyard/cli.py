"""`shipyard`: the umbrella command. Each tool mounts its own Typer app here.

Errors: a ShipyardError prints its message and fix, without a traceback, and exits 2 (3 for
retryable ones); `--debug` shows tracebacks and debug logs.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from shipyard import __version__
from shipyard.console import print_error, setup_logging
from shipyard.errors import ShipyardError, closest
from shipyard.redact import redact

# Each tool's Typer app, loaded only when its command runs (`shipyard --help` imports none of
# them: no DuckDB, pyarrow, boto3 or FastAPI at start-up). name -> ("module:attr", one-line help).
TOOL_APPS: dict[str, tuple[str, str]] = {
    "propagator": ("shipyard.propagator.cli:app",
                   "propagator: drop schema specs and data files into a bucket; tables are created, changed and "
                   "loaded."),
    "jarvis": ("shipyard.jarvis.cli:app",
               "jarvis: Slack notifications (send, serve the HTTP endpoint, list the bot's channels)."),
    "lake": ("shipyard.lake.cli:app",
             "lake: raw JSON events -> deduplicated, partitioned Parquet; SQL over it (docs/lake.md)."),
    "pulse": ("shipyard.pulse.cli:app",
              "pulse: uptime monitors as code (Heartbeat-style YAML files, alerts, status page)."),
    "photon": ("shipyard.photon.cli:app",
               "photon: one deployment.json, one command: blue/green, canary and linear rollouts, "
               "locally or on AWS Fargate."),
    "custodian": ("shipyard.custodian.cli:app",
                  "custodian: Cloud Custodian policies as code over every account; findings to a ledger, "
                  "Slack and Security Hub."),
    "ami": ("shipyard.ami.cli:app",
            "ami: immutable releases (Packer AMIs, bounded images and launch-template versions, "
            "instance refreshes that roll back)."),
    "site": ("shipyard.site.cli:app",
             "site: deploy a static site to S3 + CloudFront or a folder: diff upload, headers, "
             "invalidation, verify, releases, rollback, previews per branch."),
}


def load_tool(name: str) -> Any:
    """The click command of one tool's Typer app (imports the tool)."""
    module, _, attr = TOOL_APPS[name][0].partition(":")
    cmd = typer.main.get_command(getattr(importlib.import_module(module), attr))
    cmd.name = name
    return cmd


class _LazyTools(TyperGroup):
    """The umbrella group: tools are listed from TOOL_APPS and imported on first use."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in TOOL_APPS if n not in self.commands)]

    def get_command(self, ctx: Any, name: str) -> Any:
        if name in self.commands or name not in TOOL_APPS:
            return super().get_command(ctx, name)
        if self._listing:  # the help page only needs the one-line help
            return TyperCommand(name, help=TOOL_APPS[name][1])
        self.commands[name] = load_tool(name)
        return self.commands[name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except Exception as e:  # typer's own click's UsageError; typer suggests among loaded commands only
            usage = any(c.__name__ == "UsageError" for c in type(e).__mro__)
            close = closest(args[0], self.list_commands(ctx)) if args and usage else None
            if close and "Did you mean" not in e.message:  # type: ignore[attr-defined]
                e.message = f"{e.message.rstrip('.')}. Did you mean {close!r}?"
            raise

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="shipyard",
    help="shipyard: internal developer tools (propagator, jarvis, lake, pulse, photon, custodian, ami, site).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=_LazyTools,
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shipyard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    _state["debug"] = debug
    setup_logging(debug)


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, prog_name="shipyard")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # ShipyardError: message + fix; anything else is a bug
        if _state["debug"]:  # the traceback, with secrets masked like every other output
            sys.stderr.write(redact("".join(traceback.format_exception(exc))))
        else:
            print_error(exc)
        sys.exit(exc.exit_code if isinstance(exc, ShipyardError) else 1)


if __name__ == "__main__":
    main()
