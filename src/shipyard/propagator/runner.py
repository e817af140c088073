"""The propagator's library API: process one key, every pending key, or watch a bucket.

```python
p = Propagator.from_settings("./bucket")          # or "s3://bucket/prefix"
p.process_key("destination=duckdb/database=sales/table_name=orders/input/load/a.csv")
p.process_pending()                                # every pending file, tables in parallel
p.watch(stop=threading.Event())                    # long-running
```

Outcomes (outcomes.py): `succeeded`, `failed`, `skipped`, `duplicate`. planning.py makes a key's plan.
A transient failure (connection lost, S3 throttling) raises TransientError and leaves the
file where it is, so a retry works. Every succeeded / failed outcome sends a notice.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from shipyard.errors import ConfigError, InputError, NotFoundError, ShipyardError, TransientError
from shipyard.notify import Notifier, get_notifier
from shipyard.propagator.engines import Engine, open_engine
from shipyard.propagator.layout import OutsideLayout, ParsedKey, parse_key
from shipyard.propagator.ledger import LedgerEntry, key_hash
from shipyard.propagator.outcomes import WAITING_FOR_CONFIG, Endings, Outcome
from shipyard.propagator.schedule import order, settling_seconds
from shipyard.propagator.screen import Reject, Screened
from shipyard.propagator.plan import Plan, failure_plan
from shipyard.propagator.planning import plan_file, validate_spec
from shipyard.propagator.sources import Source
from shipyard.redact import redact
from shipyard.retry import Backoff
from shipyard.settings import Settings, get_settings
from shipyard.store import ObjectInfo, ObjectStore, open_store, sweep_spool

log = logging.getLogger("shipyard.propagator")


CONFLICT_TRIES = 4  # runs of one file's transaction when the server reports a deadlock


class Propagator:
    def __init__(self, store: ObjectStore, settings: Settings | None = None, notifier: Notifier | None = None) -> None:
        settings = settings if settings is not None else get_settings()
        self.store = store
        self.settings = settings
        self.notifier = notifier if notifier is not None else get_notifier(settings)
        self._config_warned: set[str] = set()
        self.endings = Endings(store, self.notifier, settings.propagator.channel, self._ledger_entry,
                               self._record_failure)
        self._engines: dict[str, Engine] = {}
        self._engines_lock = threading.Lock()
        if swept := sweep_spool():  # files left by loaders that died
            log.info("removed %d temp file(s) left by loaders that died", swept)

    @classmethod
    def from_settings(cls, bucket: str, settings: Settings | None = None, notifier: Notifier | None = None,
                      *, must_exist: bool = False) -> "Propagator":
        """A propagator over `bucket`: a local folder or `s3://bucket[/prefix]`.

        `must_exist=True` (the CLI) refuses a folder or bucket that is not there, so a typo in
        `--bucket` is an error rather than "nothing pending"."""
        return cls(open_store(str(bucket), must_exist=must_exist), settings, notifier)

    # -- engines ------------------------------------------------------------------------------
    def engine(self, name: str) -> Engine:
        with self._engines_lock:
            if name not in self._engines:
                self._engines[name] = open_engine(name, self.settings)
            return self._engines[name]

    def close(self) -> None:
        with self._engines_lock:
            for e in self._engines.values():
                e.close()
            self._engines.clear()

    def __enter__(self) -> "Propagator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- one key --------------------------------------------------------------------------------
    def process_key(self, key: str, *, etag: str | None = None) -> Outcome:
        """Process one object. See the module docstring for the outcomes.

        A deadlock or serialization failure (the server rolled the whole transaction back and asks
        for it again) is run again here, up to CONFLICT_TRIES times with a short random pause, so
        two tables created at once both land in one pass; any other transient error is raised."""
        for attempt in range(1, CONFLICT_TRIES + 1):
            try:
                return self._process_once(key, etag)
            except TransientError as exc:
                if not exc.details.get("conflict") or attempt == CONFLICT_TRIES:
                    raise
                log.info("%s: %s (run again, try %d of %d)", key, exc.message, attempt + 1, CONFLICT_TRIES)
                time.sleep(random.uniform(0.05, 0.25) * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _process_once(self, key: str, etag: str | None) -> Outcome:
        t0 = time.perf_counter()
        try:
            pk = parse_key(key)
        except OutsideLayout as exc:
            log.info("skipped %s: %s", key, exc.message)
            return Outcome(key, "skipped", reason=exc.message)
        except InputError as exc:  # a key with '..' and the like: nothing to move, nothing to touch
            log.warning("skipped %r: %s", key, exc.message)
            return Outcome(key, "skipped", reason=exc.message)
        if not pk.pending:
            return Outcome(key, "skipped", table=pk.table, reason=f"already under {pk.state}/")

        try:
            info = self.store.head(key)
        except NotFoundError:
            return self.endings.gone(pk, etag, t0)
        etag = info.etag or etag
        table = f"{pk.database}.{pk.table}"
        plan: Plan | None = None
        source: Source | None = None
        screened: Screened | None = None
        try:
            pk = pk.check_identifiers()
            table = f"{pk.database}.{pk.table}"
            # A destination that is not configured, or configured wrongly, is not the file's fault:
            # ConfigError leaves the file where it is, to be retried once the settings are fixed.
            engine = self.engine(pk.destination)
            validate_spec(self.store, pk, engine)  # a bad spec is refused before touching the database
            done = engine.ledger_entry(pk.database, key_hash(key, etag))
            if done is not None:
                # Loaded before (a crash between commit and move, or a re-drop of the same bytes).
                return self.endings.heal(pk, done, t0, table)
            pk = self.endings.with_archive(pk)  # recorded in the ledger row, in the same transaction
            plan, source = plan_file(self.store, self.settings, pk, engine, etag, info.size, materialize=True)
            result = engine.run(plan, source)
            screened = source.screened if source is not None else None
            if result.rejects:  # set aside by the engine's own load (Redshift's MAXERROR)
                screened = Screened(result.rows, [Reject(int(line), None, col or None, reason, text)
                                                  for line, col, reason, text in result.rejects])
            if result.duplicate:
                entry = engine.ledger_entry(pk.database, plan.key_hash) or LedgerEntry(0)
                return self.endings.heal(pk, entry, t0, table)
        except (TransientError, ConfigError):
            raise
        except NotFoundError:
            # The object vanished while we read it: another worker finished it (a redelivered
            # event racing the first delivery) or it was deleted. Not the file's fault: no report.
            return self.endings.gone(pk, etag, t0)
        except ShipyardError as exc:
            if not self.store.exists(pk.key):  # an engine's own reader found the file gone: as above
                return self.endings.gone(pk, etag, t0)
            return self.endings.fail(pk, exc, t0, table, etag=etag, size=info.size)
        finally:
            if source is not None:
                source.close()
        return self.endings.succeed(pk, result.rows, t0, table, screened)

    def plan_key(self, key: str) -> Plan:
        """The statements `key` would run, without running anything or moving the file."""
        pk = parse_key(key)
        if not pk.pending:
            raise InputError(f"{key!r} is under {pk.state}/ and will not be processed again",
                             hint="copy it back under schema/ or input/ to process it again")
        return self.dry_run(pk.check_identifiers())

    def dry_run(self, pk: ParsedKey) -> Plan:
        """Every check `pk.key`'s processing makes, against the live table, and its plan."""
        info = self.store.head(pk.key)
        plan, source = plan_file(self.store, self.settings, pk, self.engine(pk.destination), info.etag, info.size,
                                 materialize=False)
        if source is not None:
            source.close()
        return plan

    def _ledger_entry(self, pk: ParsedKey, etag: str | None) -> LedgerEntry | None:
        """This object version's record in its destination's ledger; None if unknown."""
        try:
            return self.engine(pk.destination.lower()).ledger_entry(pk.database.lower(), key_hash(pk.key, etag))
        except Exception:  # unknown destination or bad names: it cannot be in a ledger
            return None

    def _record_failure(self, pk: ParsedKey, failed_key: str, etag: str | None, size: int | None) -> None:
        """The failed attempt's ledger row, where the destination answers (best effort: the report
        under failed/ is the record that always exists)."""
        try:
            pk = pk.check_identifiers()
            engine = self.engine(pk.destination.lower())
            engine.run(failure_plan(engine.dialect, pk, etag, size, failed_key), None)
        except Exception as exc:  # noqa: BLE001 - bad names, no destination, down: the report stands
            why = exc.message if isinstance(exc, ShipyardError) else type(exc).__name__
            log.debug("%s: failed attempt not recorded in the ledger: %s", pk.key, redact(why))

    def process_in_order(self, key: str, *, etag: str | None = None) -> Outcome:
        """Process `key` after every pending file of its table that comes before it.

        An event (an S3 notification, an SQS message) names one file, but events arrive in any
        order and on several workers. Applying the table's earlier pending files first keeps a
        table's files in key order whoever receives which event; the earlier files' own events
        then find them done (`duplicate`). A transient failure of an earlier file raises, so
        this event is retried and the order kept. Returns the outcome of `key` itself."""
        try:
            pk = parse_key(key)
        except (OutsideLayout, InputError):
            pk = None
        if pk is not None and pk.pending:
            mine = order(pk)
            for earlier in self.pending(pk.table_prefix + "schema/") + self.pending(pk.table_prefix + "input/"):
                if order(earlier) < mine:
                    self.process_key(earlier.key)
        return self.process_key(key, etag=etag)

    # -- many keys --------------------------------------------------------------------------------
    def pending(self, prefix: str = "") -> list[ParsedKey]:
        """Every pending key under `prefix` that is ready (settled), ordered for processing."""
        return self.scan(prefix)[0]

    def scan(self, prefix: str = "") -> tuple[list[ParsedKey], float]:
        """(pending keys that are ready, seconds until the next file still settling is ready).

        A file in a local bucket is ready once its mtime is `propagator.settle_seconds` old: its
        size and mtime have not changed for that long, so nobody is writing it. S3 objects
        appear only when whole."""
        settle = self.settings.propagator.settle_seconds
        now = datetime.now(timezone.utc)
        out, wait = [], 0.0
        for obj in self._candidates(prefix):
            try:
                pk = parse_key(obj.key)
            except (OutsideLayout, InputError):
                continue
            if not pk.pending:
                continue
            left = settling_seconds(obj, now, settle) if self.store.local_path(obj.key) is not None else 0.0
            if left > 0:
                wait = min(wait, left) if wait else left
                continue
            out.append(pk)
        return sorted(out, key=order), wait

    def _candidates(self, prefix: str) -> Iterator[ObjectInfo]:
        if prefix:
            yield from self.store.list(prefix)
            return
        # The whole bucket, on every poll: walk destination=/database=/table_name=/ and list only
        # the folders not done yet. succeeded/ and failed/ grow forever; listing them each time
        # would cost a LIST request per 1,000 processed files, per poll.
        for dest in self.store.list_dirs(""):
            for db in self.store.list_dirs(dest):
                for table in self.store.list_dirs(db):
                    for sub in self.store.list_dirs(table):
                        if sub[len(table):-1].lower() not in ("succeeded", "failed"):
                            yield from self.store.list(sub)

    def process_pending(self, *, wait_to_settle: bool = True) -> list[Outcome]:
        """Every pending key: tables in parallel, one table's files one after another.

        `wait_to_settle`: first wait (up to 3 x settle_seconds) for files still being written
        into a local bucket, so a one-shot `process` right after a copy loads them; `watch`
        passes False and picks them up on a later poll."""
        ready, wait = self.scan()
        deadline = time.monotonic() + 3 * self.settings.propagator.settle_seconds
        while wait and wait_to_settle and time.monotonic() + wait <= deadline:
            time.sleep(wait)
            ready, wait = self.scan()
        groups: dict[str, list[ParsedKey]] = {}
        for pk in ready:
            groups.setdefault(pk.table_prefix.lower(), []).append(pk)
        if not groups:
            return []

        def run_table(keys: list[ParsedKey]) -> list[Outcome]:
            outs = []
            for pk in keys:
                try:
                    outs.append(self.process_key(pk.key))
                except ConfigError as exc:
                    # The destination's settings, not a dependency down: no backoff for the others,
                    # one warning per file (not one per poll); retried once the settings change.
                    level = logging.DEBUG if pk.key in self._config_warned else logging.WARNING
                    self._config_warned.add(pk.key)
                    log.log(level, "%s: %s (left in place until the destination is configured)", pk.key, exc.message)
                    outs.append(Outcome(pk.key, "skipped", table=f"{pk.database}.{pk.table}",
                                        reason=f"{WAITING_FOR_CONFIG}: {exc.message}"))
                    break  # keep this table's order: the next file waits for this one
                except TransientError as exc:
                    log.warning("%s: %s (left in place; will retry)", pk.key, exc.message)
                    outs.append(Outcome(pk.key, "skipped", table=f"{pk.database}.{pk.table}",
                                        reason=f"retry later: {exc.message}"))
                    break  # keep this table's order: the next file waits for this one
                except Exception as exc:  # a bug must not stall the other tables nor stop a worker
                    log.error("%s: unexpected %s: %s (left in place; will retry)", pk.key,
                              type(exc).__name__, redact(exc))
                    outs.append(Outcome(pk.key, "skipped", table=f"{pk.database}.{pk.table}",
                                        reason=f"retry later: unexpected {type(exc).__name__}"))
                    break
            return outs

        workers = max(1, min(int(self.settings.propagator.workers), len(groups)))
        results: list[Outcome] = []
        with ThreadPoolExecutor(workers, thread_name_prefix="propagator") as pool:
            for outs in pool.map(run_table, groups.values()):
                results.extend(outs)
        return results

    def watch(self, *, interval: float | None = None, stop: threading.Event | None = None,
              on_outcome: Callable[[Outcome], None] | None = None) -> None:
        """Poll the bucket until `stop` is set; a bad file never stops the loop."""
        interval = float(self.settings.propagator.poll_interval if interval is None else interval)
        # After a failed pass (a dependency down: S3 5xx / timeouts, the database gone) wait
        # longer each time, capped, with jitter, so a recovering server is not hammered.
        cap = self.settings.propagator.retry_max_seconds
        stop = stop or threading.Event()
        log.info("watching %s every %.1fs", self.store.url, interval)
        backoff = Backoff(base=max(interval, 0.5), cap=cap)
        while not stop.is_set():
            failed = progressed = False
            try:
                for outcome in self.process_pending(wait_to_settle=False):
                    if outcome.status == "skipped" and (outcome.reason or "").startswith("retry later"):
                        failed = True
                    elif outcome.status != "skipped":
                        progressed = True
                    if on_outcome is not None:
                        on_outcome(outcome)
            except Exception as exc:  # keep serving: log, wait, try again
                log.error("watch: %s: %s", type(exc).__name__, redact(exc))
                failed = True
            if failed and not progressed:  # one stuck file must not slow every other table down
                delay = backoff.failed()
                log.warning("watch: retrying in %.1fs (attempt %d failed; backing off)", delay, backoff.failures)
            else:
                if ended := backoff.succeeded():
                    log.info("watch: recovered after %d failed attempt(s)", ended)
                delay = interval
            stop.wait(delay)
