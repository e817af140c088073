"""`shipyard`: the umbrella command. Each tool mounts its own Typer app here.

Errors: a ShipyardError prints its message and fix, without a traceback, and exits 2 (3 for
retryable ones); `--debug` shows tracebacks and debug logs.
"""

from __future__ import annotations

import sys

import typer

from shipyard import __version__
from shipyard.ami.cli import app as ami_app
from shipyard.console import print_error, setup_logging
from shipyard.jarvis.cli import app as jarvis_app
from shipyard.lake.cli import app as lake_app
from shipyard.photon.cli import app as photon_app
from shipyard.propagator.cli import app as propagator_app
from shipyard.pulse.cli import app as pulse_app

app = typer.Typer(
    name="shipyard",
    help="shipyard: internal developer tools (propagator, jarvis, lake, pulse, ami).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(propagator_app, name="propagator")
app.add_typer(jarvis_app, name="jarvis")
app.add_typer(lake_app, name="lake")
app.add_typer(pulse_app, name="pulse")
app.add_typer(photon_app, name="photon")
app.add_typer(ami_app, name="ami")

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
    from shipyard.errors import ShipyardError

    try:
        app(args=argv, prog_name="shipyard")
    except ShipyardError as exc:
        if _state["debug"]:
            raise
        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: short message, traceback with --debug
        if _state["debug"]:
            raise
        print_error(exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
