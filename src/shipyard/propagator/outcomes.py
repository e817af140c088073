"""How a file's processing ends: the outcome, the move, the error report, the notice.

Outcomes: `succeeded` (moved to succeeded/), `failed` (a terminal problem with the file or its
spec: moved to failed/ with `<name>.error.json`), `skipped` (not a propagator key, or already
under succeeded/ / failed/), `duplicate` (already loaded: a redelivered event).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Literal

from shipyard.errors import NotFoundError, ShipyardError
from shipyard.notify import Attachment, Notice, Notifier
from shipyard.propagator.layout import ParsedKey, unique_name
from shipyard.propagator.ledger import LedgerEntry, key_hash
from shipyard.propagator.screen import Screened
from shipyard.redact import redact, redact_obj
from shipyard.store import ObjectStore

log = logging.getLogger("shipyard.propagator")

Status = Literal["succeeded", "failed", "skipped", "duplicate"]
# The reason of a file left pending because its destination is not (correctly) configured.
WAITING_FOR_CONFIG = "waiting for the destination's configuration"
VERBS = {"create": "created", "alter": "altered", "load": "loaded", "upsert": "upserted"}


@dataclass
class Outcome:
    key: str
    status: Status
    table: str | None = None
    rows: int | None = None
    seconds: float = 0.0
    moved_to: str | None = None
    error: dict[str, Any] | None = None
    reason: str | None = None
    rejected: int | None = None  # bad rows set aside (the table's max_bad_rows)
    rejects: str | None = None  # ... in this file: failed/<name>.rejects.csv

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def where_text(where: dict[str, Any] | None) -> str:
    """" at line 3, column 'amount' (2)" from a report's `where`."""
    if not where:
        return ""
    parts = []
    if where.get("line"):
        parts.append(f"line {where['line']}")
    if where.get("column_name") or where.get("column"):
        c = where.get("column_name")
        n = where.get("column")
        parts.append(f"column {c!r} ({n})" if c and n else f"column {c or n}")
    if where.get("field"):
        parts.append(f"field {where['field']}")
    return " at " + ", ".join(parts) if parts else ""


def error_report(pk: ParsedKey, exc: ShipyardError, failed_key: str | None = None) -> dict[str, Any]:
    """The `<name>.error.json` written beside a failed file: what, where, how to fix."""
    details = {k: v for k, v in exc.details.items() if k != "where" and v is not None}
    report = {
        "file": failed_key or pk.failed_key,
        "original_key": pk.key,
        "destination": pk.destination,
        "database": pk.database,
        "table": pk.table,
        "operation": pk.operation,
        "failed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "error": type(exc).__name__,
        "what": exc.message,
        "where": exc.details.get("where"),
        "how_to_fix": exc.hint or "correct the file and drop it again under its original folder",
        "retry": "fix the file and drop it again (same folder); the failed copy stays here for reference",
    }
    if details:
        report["details"] = details
    return redact_obj(report)


class Endings:
    """Moves a processed file, writes its report, sends its notice, returns its Outcome.

    `ledger_entry(pk, etag)`: the destination's ledger record of that object version, or None.
    Nothing archived is ever overwritten: a name already under succeeded/ or failed/ (a second
    `daily.csv`, a data file named like a spec) gets a unique one (`daily.<UTC time>.csv`).
    """

    def __init__(self, store: ObjectStore, notifier: Notifier, channel: str,
                 ledger_entry: Callable[[ParsedKey, str | None], LedgerEntry | None],
                 record_failure: Callable[[ParsedKey, str, str | None, int | None], None] | None = None) -> None:
        self.store = store
        self.notifier = notifier
        self.channel = channel
        self.ledger_entry = ledger_entry
        self.record_failure = record_failure  # best effort: the ledger row of a failed attempt

    def free_key(self, folder_key: str) -> str:
        """`<table>/<folder>/<name>` if nothing is there, else a unique sibling name."""
        folder, _, name = folder_key.rpartition("/")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")

        def taken(n: str) -> bool:
            return self.store.exists(f"{folder}/{n}") or self.store.exists(f"{folder}/{n}.error.json")

        return f"{folder}/{unique_name(name, taken, stamp)}"

    def with_archive(self, pk: ParsedKey) -> ParsedKey:
        """`pk` with the key it will be archived under when it succeeds."""
        return replace(pk, archive=self.free_key(pk.succeeded_key))

    def gone(self, pk: ParsedKey, etag: str | None, t0: float) -> Outcome:
        """The object is no longer under input/ or schema/: a redelivered event, or a deleted file."""
        table = f"{pk.database}.{pk.table}"
        done = self.ledger_entry(pk, etag) if etag else None
        if done is not None or self.store.exists(pk.succeeded_key):
            return Outcome(pk.key, "duplicate", table=table, rows=done.rows if done else None,
                           seconds=time.perf_counter() - t0,
                           moved_to=(done.archive_key if done else None) or pk.succeeded_key,
                           reason="already processed (in the ledger / under succeeded/)")
        if self.store.exists(pk.failed_key):
            return Outcome(pk.key, "duplicate", table=table, seconds=time.perf_counter() - t0,
                           moved_to=pk.failed_key, reason="already processed (under failed/)")
        return Outcome(pk.key, "skipped", table=table, reason="the object no longer exists")

    def heal(self, pk: ParsedKey, entry: LedgerEntry, t0: float, table: str) -> Outcome:
        """The ledger has this version: move it where the ledger says (a crash between the commit
        and the move; or the same bytes dropped again, archived beside the first copy)."""
        log.info("%s was already loaded (ledger): moving it to succeeded/", pk.key)
        rows = entry.rows
        target = entry.archive_key if entry.archive_key and not self.store.exists(entry.archive_key) \
            else self.free_key(pk.succeeded_key)
        try:
            self.store.move(pk.key, target)
        except NotFoundError:  # another worker finished it between our check and the move
            return Outcome(pk.key, "duplicate", table=table, rows=rows, seconds=time.perf_counter() - t0,
                           moved_to=entry.archive_key or pk.succeeded_key,
                           reason="processed by another worker at the same time")
        secs = time.perf_counter() - t0
        self.notify("success", f"{table}: already loaded", f"{pk.key} was loaded before ({rows} rows); "
                    f"moved to {target}", {"table": table, "rows": rows, "seconds": round(secs, 3)})
        return Outcome(pk.key, "succeeded", table=table, rows=rows, seconds=secs, moved_to=target,
                       reason="already in the ledger (healed after an interrupted run, or the same bytes dropped again)")

    def succeed(self, pk: ParsedKey, rows: int, t0: float, table: str, screened: Screened | None = None) -> Outcome:
        rejected, rejects_key = (len(screened.rejects), None) if screened is not None else (0, None)
        if rejected:
            # Beside where a failed file would go, named after the archived file: never overwritten.
            rejects_key = pk.table_prefix + "failed/" + pk.archive_key.rsplit("/", 1)[-1] + ".rejects.csv"
            try:
                self.store.put(rejects_key, screened.rejects_csv())  # type: ignore[union-attr]
            except OSError as exc:  # the rows are loaded: say where the rejects could not go
                log.error("%s: could not write %s: %s", pk.key, rejects_key, exc)
                rejects_key = None
        try:
            self.store.move(pk.key, pk.archive_key)
        except NotFoundError:  # deleted while we loaded it; the rows and the ledger stand
            log.warning("%s vanished before it could be moved to succeeded/", pk.key)
        secs = time.perf_counter() - t0
        verb = VERBS[str(pk.operation)]
        msg = (f"{verb} {table}" if pk.operation in ("create", "alter")
               else f"{verb} {rows} rows into {table}") + f" in {secs:.2f}s from {pk.name}"
        fields: dict[str, Any] = {"table": table, "rows": rows, "seconds": round(secs, 3),
                                  "operation": pk.operation, "file": pk.archive_key}
        if rejected:
            msg += f"; {rejected} bad row{'s' if rejected != 1 else ''} set aside in {rejects_key or '(not written)'}"
            fields.update(rejected=rejected, rejects=rejects_key)
        self.notify("success", f"{table}: {verb}", msg, fields)
        log.info("%s: %s", pk.key, msg)
        return Outcome(pk.key, "succeeded", table=table, rows=rows, seconds=secs, moved_to=pk.archive_key,
                       rejected=rejected or None, rejects=rejects_key)

    def fail(self, pk: ParsedKey, exc: ShipyardError, t0: float, table: str, *, etag: str | None = None,
             size: int | None = None) -> Outcome:
        failed_key = self.free_key(pk.failed_key)
        report = error_report(pk, exc, failed_key)
        # Report first, then the move: a reader who finds the file under failed/ finds its report.
        body = json.dumps(report, indent=2, default=str).encode()
        report_key = failed_key + ".error.json"
        try:
            self.store.put(report_key, body)
        except OSError:
            # <name>.error.json can exceed a filesystem's 255-byte name limit when <name> fits:
            # the report then takes a short name (it names the file inside) instead of wedging it.
            report_key = pk.table_prefix + "failed/" + key_hash(failed_key, None)[:16] + ".error.json"
            self.store.put(report_key, body)
        try:
            self.store.move(pk.key, failed_key)
        except NotFoundError:
            log.warning("%s vanished before it could be moved to failed/", pk.key)
        if self.record_failure is not None:
            self.record_failure(pk, failed_key, etag, size)
        secs = time.perf_counter() - t0
        self.notify(
            "failure", f"{table}: {pk.name} failed",
            f"{report['what']}{where_text(report.get('where'))}. Fix: {report['how_to_fix']}. "
            f"The file is now at {failed_key}",
            {"table": table, "operation": pk.operation, "file": failed_key, "report": report_key},
            attachment=Attachment(bucket=self.store.url, key=report_key),
        )
        log.warning("%s failed: %s", pk.key, report["what"])
        return Outcome(pk.key, "failed", table=table, seconds=secs, moved_to=failed_key, error=report,
                       reason=report["what"])

    def notify(self, level: Literal["success", "failure"], title: str, message: str, fields: dict[str, Any],
               attachment: Attachment | None = None) -> None:
        try:
            self.notifier.send(Notice("propagator", level, redact(title), redact(message),
                                      channel=self.channel, fields=redact_obj(fields), attachment=attachment))
        except Exception as exc:  # a notification problem must not undo or repeat a load
            log.error("could not send the notice %r: %s", title, exc)
