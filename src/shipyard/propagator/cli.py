"""`shipyard propagator ...`: a thin client of shipyard.propagator's library API."""

from __future__ import annotations

import typer

app = typer.Typer(help="propagator (not built yet).", no_args_is_help=True)
