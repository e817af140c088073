"""`shipyard propagator history` and `retry`: what happened to each file; try a failed one again.

Every attempt comes from each destination database's ledger: a succeeded one written in the same
transaction as the data (file, operation, rows, seconds, archive key), a failed one right after
its file moved to failed/ (its reason from the `failed/<name>.error.json` report beside it). A
failed attempt the destination could not record shows from its report alone. A retried file so
has both attempts in the ledger.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from shipyard.errors import InputError, ShipyardError
from shipyard.propagator.layout import parse_key
from shipyard.propagator.ledger import history_sql
from shipyard.propagator.runner import Propagator

log = logging.getLogger("shipyard.propagator")

_SINCE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass
class Entry:
    key: str  # the key the file was dropped as
    table: str
    operation: str | None
    status: str  # succeeded | failed
    at: str  # ISO time, UTC
    rows: int | None = None
    seconds: float | None = None
    archive_key: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_since(text: str) -> timedelta:
    """`30m`, `12h`, `1d`, `2w` as a timedelta."""
    m = _SINCE.match(text or "")
    if not m:
        raise InputError(f"--since {text!r} is not a duration", hint="use a number and a unit: 30m, 12h, 1d, 2w")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def _utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def history(p: Propagator, *, table: str | None = None, status: str | None = None,
            since: timedelta | None = None, now: datetime | None = None) -> list[Entry]:
    """Every processed file of the bucket (of `table`: `db.table` or `table`), oldest first."""
    now = now or datetime.now(timezone.utc)
    entries: list[Entry] = []
    for dest, db, tables in _folders(p, table):
        ledger = _ledger(p, dest, db, tables)
        failed = {e.archive_key: e for e in ledger if e.status == "failed"}
        entries.extend(ledger)
        for t in tables:
            for e in _reports(p, f"destination={dest}/database={db}/table_name={t}/failed/"):
                if e.archive_key in failed:  # the ledger's row of that attempt, with the report's why
                    failed[e.archive_key].reason = e.reason
                else:  # not recorded (the destination did not answer): the report alone
                    entries.append(e)
    if status is not None:
        entries = [e for e in entries if e.status == status]
    if since is not None:
        entries = [e for e in entries if (_utc(e.at) or now) >= now - since]
    return sorted(entries, key=lambda e: (_utc(e.at) or now, e.key))


def _folders(p: Propagator, table: str | None) -> Iterator[tuple[str, str, list[str]]]:
    """(destination, database, [tables]) as the bucket's folders name them."""
    want_db, _, want_table = (table or "").rpartition(".")
    for dest_dir in p.store.list_dirs(""):
        dest = dest_dir[:-1].removeprefix("destination=")
        for db_dir in p.store.list_dirs(dest_dir):
            db = db_dir[len(dest_dir):-1].removeprefix("database=")
            if want_db and db.lower() != want_db.lower():
                continue
            tables = [t[len(db_dir):-1].removeprefix("table_name=") for t in p.store.list_dirs(db_dir)]
            tables = [t for t in tables if not want_table or t.lower() == want_table.lower()]
            if tables:
                yield dest, db, tables


def _ledger(p: Propagator, dest: str, db: str, tables: list[str]) -> list[Entry]:
    try:
        engine = p.engine(dest.lower())
        found = []
        for t in tables:
            sql, params = history_sql(engine.dialect, db.lower(), t.lower())
            found += engine.read_ledger(db.lower(), sql, params)
    except ShipyardError as exc:  # a destination not configured here: its reports still show
        log.warning("destination %s: ledger not read (%s)", dest, exc.message)
        return []
    return [Entry(key=r["object_key"], table=f"{db.lower()}.{r['table_name']}", operation=r.get("operation"),
                  status=str(r.get("status") or "succeeded"), at=str(r.get("processed_at")), rows=r.get("row_count"),
                  seconds=r.get("seconds"), archive_key=r.get("archive_key")) for r in found]


def _reports(p: Propagator, prefix: str) -> list[Entry]:
    out = []
    for obj in p.store.list(prefix):
        if not obj.key.endswith(".error.json"):
            continue
        try:
            with p.store.open(obj.key) as f:
                report = json.loads(f.read(1 << 20))
            pk = parse_key(report["original_key"])
        except (ShipyardError, ValueError, KeyError, TypeError):
            continue  # not one of our reports
        out.append(Entry(key=pk.key, table=f"{report.get('database')}.{report.get('table')}",
                         operation=report.get("operation"), status="failed", at=str(report.get("failed_at")),
                         archive_key=report.get("file"), reason=report.get("what")))
    return out


def retry(p: Propagator, failed_key: str, *, force: bool = False) -> str:
    """Move a failed file back to where it was dropped, once the checks its processing makes
    pass against the live table (the column now exists, the spec was fixed...). Its report stays
    in failed/ (marked `retried_at`). Returns the key it is back at; the next pass loads it."""
    report_key = failed_key + ".error.json"
    try:
        with p.store.open(report_key) as f:
            report = json.loads(f.read(1 << 20))
        original = parse_key(report["original_key"])
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{report_key} is not a propagator failure report",
                         hint="retry takes the key of a file under failed/ (its report lies beside it)") from None
    if not p.store.exists(failed_key):
        raise InputError(f"{failed_key} does not exist", hint="see `shipyard propagator history --status failed`")
    if p.store.exists(original.key):
        raise InputError(f"{original.key} exists already (dropped again?): nothing moved",
                         hint="process that file, or remove it first")
    if not force:
        try:
            p.dry_run(replace(original.check_identifiers(), key=failed_key))
        except (InputError, ShipyardError) as exc:
            if exc.retryable:
                raise
            raise InputError(f"{failed_key} would fail again: {exc.message}",
                             hint=(exc.hint or "fix the cause first") + "; or pass --force to move it anyway",
                             where=exc.details.get("where")) from None
    p.store.move(failed_key, original.key)
    report["retried_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report["retried_to"] = original.key
    p.store.put(report_key, json.dumps(report, indent=2, default=str).encode())
    log.info("%s moved back to %s", failed_key, original.key)
    return original.key
