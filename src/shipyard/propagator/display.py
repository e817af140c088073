"""What `shipyard propagator ...` and the demo print: outcome tables.

Text from files (names, error messages) is shown as it is: rich markup and emoji codes in it
are never rendered (a file named `[red]x` or a message with `:x:` stays literal).
"""

from __future__ import annotations

from typing import Iterable, Iterator

from rich.table import Table
from rich.text import Text

from shipyard.console import console
from shipyard.propagator.history import Entry
from shipyard.propagator.offline import Check
from shipyard.propagator.outcomes import Outcome

COLORS = {"succeeded": "green", "failed": "red", "duplicate": "cyan", "skipped": "yellow"}


def outcome_rows(outcomes: Iterable[Outcome]) -> Iterator[tuple[str, str, str, str, str, str]]:
    """(file, status, table, rows, seconds, detail) per outcome, as plain text."""
    for o in outcomes:
        where = ""
        if o.error and o.error.get("where"):
            w = o.error["where"]
            where = ", ".join(f"{k}={v}" for k, v in w.items() if v is not None)
        detail = o.reason or ""
        if o.status == "failed" and where:
            detail = f"{detail} [{where}]"
        if o.rejected:
            detail = f"{o.rejected} bad row{'s' if o.rejected != 1 else ''} set aside in {o.rejects}"
        # The table has its own column: show the file's place under the table's folder.
        short = o.key.split("/table_name=", 1)[1].split("/", 1)[-1] if "/table_name=" in o.key else o.key
        schema_file = len(o.key.split("/")) > 3 and o.key.split("/")[3] == "schema"
        rows = "" if o.rows is None or schema_file else str(o.rows)
        yield short, o.status, o.table or "", rows, f"{o.seconds:.2f}", detail


def print_outcomes(outcomes: Iterable[Outcome], title: str | None = "files") -> None:
    table = Table(title=title, header_style="bold")
    table.add_column("file", overflow="fold", ratio=3)
    table.add_column("status")
    table.add_column("table", overflow="fold")
    table.add_column("rows", justify="right")
    table.add_column("s", justify="right")
    table.add_column("detail", overflow="fold", ratio=4)
    for file, status, tbl, rows, secs, detail in outcome_rows(outcomes):
        table.add_row(_literal(file), f"[{COLORS.get(status, 'white')}]{status}[/]", _literal(tbl), rows, secs,
                      _literal(detail))
    console.print(table)


def _literal(text: str) -> Text:
    # A Text cell is shown as it is: no markup, no emoji codes (":x:" stays ":x:").
    return Text(text)


def print_checks(checks: Iterable[Check]) -> None:
    """`validate`'s verdicts: one row per file."""
    table = Table(title="propagator validate", header_style="bold")
    table.add_column("file", overflow="fold", ratio=3)
    table.add_column("operation")
    table.add_column("result")
    table.add_column("detail", overflow="fold", ratio=4)
    for c in checks:
        where = ", ".join(f"{k}={v}" for k, v in (c.where or {}).items() if v is not None)
        detail = c.message if c.ok else f"{c.message}{f' [{where}]' if where else ''}. Fix: {c.hint or '-'}"
        table.add_row(_literal(c.path), c.operation, "[green]ok[/]" if c.ok else "[red]invalid[/]", _literal(detail))
    console.print(table)


def print_history(entries: Iterable[Entry]) -> None:
    """`history`: one row per processed file."""
    table = Table(title="propagator history", header_style="bold")
    for col in ("at", "file", "table", "operation", "status", "rows", "s", "archived as / reason"):
        table.add_column(col, overflow="fold", justify="right" if col in ("rows", "s") else "left")
    for e in entries:
        short = e.key.split("/table_name=", 1)[-1].split("/", 1)[-1]
        detail = e.archive_key.rsplit("/", 2)[-2] + "/" + e.archive_key.rsplit("/", 1)[-1] if e.archive_key else ""
        if e.status == "failed" and e.reason:
            detail = f"{detail}: {e.reason}"
        table.add_row(e.at[:19], _literal(short), e.table, e.operation or "",
                      f"[{COLORS.get(e.status, 'white')}]{e.status}[/]", "" if e.rows is None else str(e.rows),
                      "" if e.seconds is None else f"{e.seconds:.2f}", _literal(detail))
    console.print(table)
