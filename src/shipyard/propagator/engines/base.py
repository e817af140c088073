"""The Engine protocol every destination implements, and what engines share.

An engine runs a plan against one destination database: `describe` a table, look a file up in
the ledger, `run` a plan (one transaction, the ledger row in it), `close`. The runner only uses
these; it never reaches into an engine.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from shipyard.errors import ConfigError, InputError
from shipyard.propagator.datafile import DataFile
from shipyard.propagator.dialects import Dialect
from shipyard.propagator.ledger import LEDGER_TABLE, OPTIONS_TABLE, LedgerEntry, options_sql
from shipyard.propagator.plan import Plan, TableInfo
from shipyard.propagator.sources import Source
from shipyard.propagator.specs import InputOptions


@dataclass
class RunResult:
    rows: int
    # The ledger already had this object version: nothing was run.
    duplicate: bool = False
    # Rows the engine's own load set aside (Redshift's MAXERROR): (line, column, reason, row text).
    rejects: list[tuple[Any, ...]] = field(default_factory=list)


class Engine(Protocol):
    """Runs plans against one destination database."""

    name: str
    dialect: Dialect

    def describe(self, database: str, table: str) -> TableInfo | None:
        """The table as it is, or None when it does not exist."""
        ...

    def ledger_entry(self, database: str, key_hash: str) -> LedgerEntry | None:
        """The ledger's record of this object version, or None if it was never processed."""
        ...

    def read_ledger(self, database: str, sql: str, params: tuple[Any, ...] = (),
                    table: str = LEDGER_TABLE) -> list[dict[str, Any]]:
        """Rows of a SELECT on the database's ledger (or another of our tables: `table`), as
        dicts ([] when that table does not exist yet)."""
        ...

    def run(self, plan: Plan, source: Source | None) -> RunResult:
        """Run the plan in one transaction; `source` feeds its copy step."""
        ...

    def close(self) -> None: ...


def crash_point(name: str) -> None:
    """Fault injection for the crash tests: `SHIPYARD_TEST_CRASH_AT=<name>` kills the process here
    the way `kill -9` would (no cleanup, no rollback from our side); unset in production."""
    if os.environ.get("SHIPYARD_TEST_CRASH_AT") == name:
        os._exit(137)


def require_rows(plan: Plan, rows: int) -> None:
    """"Succeeded" means the data arrived: a data file (never empty: inspection refuses that)
    from which the reader took no row at all fails, inside the transaction, before its ledger row.
    Seen with a line longer than a reader's limit and with a compressed stream of zeros."""
    if plan.operation in ("load", "upsert") and rows == 0:
        raise InputError(f"{action(plan)}: the file holds data, but no row could be read from it",
                         hint="check that the file is complete, that every line ends with a line break, "
                         "and that no line is longer than the reader allows",
                         code="no_rows")


def action(plan: Plan) -> str:
    """What a plan does, for error messages: "loading into sales.orders"."""
    verb = {"create": "creating", "alter": "altering", "load": "loading into",
            "upsert": "upserting into"}.get(plan.operation, plan.operation)
    return f"{verb} {plan.database}.{plan.table}"


_PG_CONTEXT = re.compile(r"line (\d+)(?:, column (\w+))?")


def where_from_text(text: str | None, data: DataFile | None,
                    pattern: re.Pattern[str] = _PG_CONTEXT) -> dict[str, Any] | None:
    """Line and column from an engine's error context, as the file's author counts them."""
    if not text:
        return None
    m = pattern.search(text)
    if not m:
        return None
    where: dict[str, Any] = to_file_position(int(m.group(1)), data)
    col = m.group(2) if m.lastindex and m.lastindex >= 2 else None
    if col:
        where["column_name"] = col
        if data is not None and data.column_number(col):
            where["column"] = data.column_number(col)
    return where


def to_file_position(csv_line: int, data: DataFile | None) -> dict[str, Any]:
    """A line of the CSV an engine read, as the author of the original file counts it: the same
    line for CSV; JSON / Parquet reach the engine as CSV (header on line 1), so line N there is
    JSON line N-1 of a .jsonl file, or record N-1 of a JSON array or Parquet file."""
    if data is None or data.format == "csv":
        return {"line": csv_line}
    if data.format == "jsonl":
        return {"line": csv_line - 1}
    return {"record": csv_line - 1}


def table_options(engine: Engine, database: str, table: str) -> InputOptions | None:
    """The table's stored CSV input options (None: the defaults)."""
    rows = engine.read_ledger(database, options_sql(engine.dialect, database), (table,), table=OPTIONS_TABLE)
    try:
        stored = rows[0]["input_options"] if rows else "null"  # "null": a create without options
        return None if stored == "null" else InputOptions.model_validate_json(stored)
    except ValidationError:
        # Written by hand, or by a newer version: the table's state, not the file, is at fault;
        # the file stays where it is until the options are fixed.
        raise ConfigError(f"the stored input options of {database}.{table} are not valid",
                          hint="drop a schema/update spec with \"operation_type\": \"options\" for the table") from None
