"""Terminal output shared by every tool's CLI: tables, errors, progress."""

from __future__ import annotations

import logging
import sys
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title, header_style="bold")
    for c in columns:
        table.add_column(str(c), overflow="fold")  # long ids (ARNs, keys) wrap, never cut
    for r in rows:
        table.add_row(*["" if v is None else str(v) for v in r])
    console.print(table)


def print_error(exc: BaseException) -> None:
    from rich.markup import escape

    from shipyard.errors import ShipyardError
    from shipyard.redact import redact

    if isinstance(exc, ShipyardError):
        err_console.print(f"[bold red]error:[/] {escape(redact(exc.message))}", highlight=False, soft_wrap=True)
        if exc.hint:
            err_console.print(f"[yellow]fix:[/] {escape(redact(exc.hint))}", highlight=False, soft_wrap=True)
    else:
        err_console.print(f"[bold red]unexpected error:[/] {type(exc).__name__}: {escape(redact(exc))}",
                          highlight=False, soft_wrap=True)
        err_console.print("run again with --debug for the traceback", style="dim")


class RedactingFilter(logging.Filter):
    """Masks passwords and tokens in every log record, whoever logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        from shipyard.redact import redact

        msg = record.getMessage()
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


def setup_logging(debug: bool = False) -> None:
    handler = RichHandler(console=err_console, show_path=debug, rich_tracebacks=debug)
    handler.addFilter(RedactingFilter())
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(message)s",
        datefmt="%H:%M:%S",
        handlers=[handler],
        force=True,
    )
    # Third-party chatter stays out of the way unless debugging.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "httpx", "httpcore", "slack_sdk",
                  "py4j", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()
