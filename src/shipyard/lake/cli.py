"""`shipyard lake ...`: a thin client of shipyard.lake's library API."""

from __future__ import annotations

import typer

app = typer.Typer(help="lake (not built yet).", no_args_is_help=True)
