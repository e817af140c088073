"""`shipyard jarvis ...`: a thin client of shipyard.jarvis's library API."""

from __future__ import annotations

import typer

app = typer.Typer(help="jarvis (not built yet).", no_args_is_help=True)
