"""The ledger: one table per destination database recording every object version processed.

`_shipyard_ledger` (key hash, object key, etag, size, operation, table, status, rows, seconds,
time) is written in the same transaction as the data it records (plan.py puts the INSERT last
in every plan), so "loaded" and "recorded" cannot disagree: a redelivered event or a re-run
after a crash finds the row and does not load again. The identity of an object version is
its key plus its etag (S3's ETag, or the MD5 of a local file: the same bytes, the same etag).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from shipyard.propagator.dialects import Dialect

LEDGER_TABLE = "_shipyard_ledger"
COLUMNS = ("key_hash", "object_key", "etag", "size", "operation", "table_name", "status", "row_count", "seconds",
           "processed_at", "archive_key")
# Added after the first release: ledgers made before get it by `migrate_sql` where the engine can.
ARCHIVE_COLUMN = "archive_key VARCHAR(1024)"


class Marker:
    """A value the engine fills in while it runs the plan."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


ROWS = Marker("rows")
SECONDS = Marker("seconds")


def key_hash(key: str, etag: str | None) -> str:
    """The ledger's identity of one object version: its key and content (etag)."""
    return hashlib.sha256(f"{key}\n{etag or ''}".encode()).hexdigest()


def ddl(d: Dialect, database: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {d.table_ref(database, LEDGER_TABLE)} ("
        "key_hash CHAR(64) NOT NULL PRIMARY KEY, object_key VARCHAR(1024) NOT NULL, etag VARCHAR(128), "
        "size BIGINT, operation VARCHAR(16) NOT NULL, table_name VARCHAR(64) NOT NULL, "
        f"status VARCHAR(16) NOT NULL, row_count BIGINT, seconds DOUBLE PRECISION, processed_at {d.type_sql('TIMESTAMP')}, "
        f"{ARCHIVE_COLUMN})"
    )


def migrate_sql(d: Dialect, database: str) -> str | None:
    """Adds archive_key to a ledger made before it existed (None where the engine has no
    ADD COLUMN IF NOT EXISTS: Redshift; docs/propagator.md gives the statement to run once)."""
    if not d.add_column_if_not_exists:
        return None
    return f"ALTER TABLE {d.table_ref(database, LEDGER_TABLE)} ADD COLUMN IF NOT EXISTS {ARCHIVE_COLUMN}"


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger holds for one object version."""

    rows: int
    # Where the file was archived (None in rows written before archive keys were recorded).
    archive_key: str | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "LedgerEntry":
        record = {k.lower(): v for k, v in record.items()}
        return cls(int(record.get("row_count") or 0), record.get("archive_key"))


def lookup_sql(d: Dialect, database: str) -> str:
    """The record of one object version (one parameter: the key hash). Every column: a ledger
    made before archive_key existed answers too (LedgerEntry.from_row)."""
    return f"SELECT * FROM {d.table_ref(database, LEDGER_TABLE)} WHERE key_hash = {d.param}"


def history_sql(d: Dialect, database: str, table: str | None) -> tuple[str, tuple[Any, ...]]:
    """Every record of the database's ledger (of one table), oldest first: (sql, params)."""
    where = f" WHERE table_name = {d.param}" if table else ""
    return (f"SELECT * FROM {d.table_ref(database, LEDGER_TABLE)}{where} ORDER BY processed_at, object_key",
            (table,) if table else ())


def record_sql(d: Dialect, database: str) -> str:
    return (f"INSERT INTO {d.table_ref(database, LEDGER_TABLE)} ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join([d.param] * len(COLUMNS))})")


def record_params(h: str, key: str, etag: str | None, size: int | None, operation: str | None,
                  table: str, archive_key: str) -> tuple[Any, ...]:
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
    return (h, key, etag, size, operation, table, "succeeded", ROWS, SECONDS, now, archive_key)


def fill(params: tuple[Any, ...], rows: int, seconds: float) -> tuple[Any, ...]:
    """The record's parameters with the run's row count and duration."""
    return tuple(rows if p is ROWS else round(seconds, 3) if p is SECONDS else p for p in params)
