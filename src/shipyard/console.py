"""Terminal output shared by every tool's CLI: tables, errors, progress.

Rendering never rewrites a message: the consoles do not turn `:x:` into an emoji, table cells
are plain text (a `[bold]` in a file name or an error stays as written), and errors escape
their text. Our own markup goes in the format strings, user text through `plain()` / `escape()`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from shipyard.errors import ShipyardError
from shipyard.redact import redact

# emoji=False: ":x:" in a message is printed as ":x:", never as an emoji.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)

__all__ = ["console", "err_console", "print_table", "print_error", "plain", "escape", "setup_logging"]


def plain(value: Any) -> Text:
    """User text as a rich Text: printed exactly as written (no markup, no emoji codes)."""
    return Text("" if value is None else str(value))


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=plain(title) if title else None, header_style="bold")
    for c in columns:
        table.add_column(plain(c))
    for r in rows:
        table.add_row(*[v if isinstance(v, Text) else plain(v) for v in r])
    console.print(table)


def print_error(exc: BaseException) -> None:
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
        msg = record.getMessage()
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


def setup_logging(debug: bool = False) -> None:
    handler = RichHandler(console=err_console, show_path=debug, rich_tracebacks=debug, markup=False)
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
