"""`shipyard pulse ...`: a thin client of shipyard.pulse's library API."""

from __future__ import annotations

import typer

app = typer.Typer(help="pulse (not built yet).", no_args_is_help=True)
