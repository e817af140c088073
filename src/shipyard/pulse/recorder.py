"""Result recording: the history batch, incidents and notices, off the event loop.

Results go to an in-memory batch that `flush()` writes in one transaction on a single database
thread (a database outage keeps the batch for the next try). Notices go through the project's
Notifier on their own thread, in order. Everything that leaves (history rows, notices, logs)
is scrubbed of the monitor's secrets first.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from concurrent.futures import Executor, Future
from datetime import datetime, timezone
from typing import Any, Callable

from shipyard.notify import Notice, Notifier
from shipyard.pulse.alerting import AlertEvent
from shipyard.pulse.history import HistoryStore
from shipyard.pulse.model import CheckResult, ConfigProblem
from shipyard.redact import redact_obj

log = logging.getLogger("shipyard.pulse")
MAX_PENDING = 600_000  # ~10 minutes at 1,000 checks/s: an outage cannot eat the memory


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def human_duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


class SerialWorker(Executor):
    """One daemon thread running jobs in order. Unlike ThreadPoolExecutor's threads (joined at
    interpreter exit), a job stuck in a hung database or Slack call cannot keep the process
    alive after `close(timeout)`."""

    def __init__(self, name: str) -> None:
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._q.get()) is not None:
            fut, fn, args, kwargs = job
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                    fut.set_exception(exc)

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:  # type: ignore[override]
        fut: Future = Future()
        self._q.put((fut, fn, args, kwargs))
        return fut

    def close(self, timeout: float) -> bool:
        """Let queued jobs finish for up to `timeout` seconds; True when they did."""
        self._q.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()


class Recorder:
    def __init__(self, history: HistoryStore, notifier: Notifier, default_channel: str) -> None:
        self.history = history
        self.notifier = notifier
        self.default_channel = default_channel
        self.pending: list[CheckResult] = []
        self.written_total = 0
        self._db = SerialWorker("pulse-db")
        self._notify = SerialWorker("pulse-notify")

    # ---- history ---------------------------------------------------------------------------
    def add(self, r: CheckResult) -> None:
        self.pending.append(r)

    async def flush(self) -> None:
        """Write the pending results in one batch (kept for a retry if the database fails)."""
        batch, self.pending = self.pending, []
        if not batch:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._db, self.history.write_checks, batch)
            self.written_total += len(batch)
        except Exception as exc:  # noqa: BLE001 - the batch is kept and retried
            log.error("pulse: could not write %d results (%s); will retry", len(batch), exc)
            self.pending[:0] = batch[-MAX_PENDING:]

    def in_db(self, fn: Callable, *args: Any) -> None:
        """Run a history write on the database thread; a failure is logged, never raised."""
        def go() -> None:
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - monitoring goes on without this write
                log.exception("pulse: history write failed")
        self._db.submit(go)

    async def read(self, fn: Callable, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    # ---- notices ---------------------------------------------------------------------------
    def send(self, notice: Notice) -> None:
        def go() -> None:
            try:
                self.notifier.send(notice)
            except Exception:  # noqa: BLE001 - a notifier outage must not stop monitoring
                log.exception("pulse: could not send notice %r", notice.title)
        self._notify.submit(go)

    def problem(self, p: ConfigProblem, *, kept: bool) -> None:
        what = "keeping its last good version" if kept else "its monitors are not loaded"
        log.error("pulse: invalid monitor file %s; %s", p, what)
        self.send(Notice(
            tool="pulse", level="warning", title=f"Invalid monitor file {p.where}",
            message=f"{p.message}" + (f" (fix: {p.hint})" if p.hint else "") + f"; {what}.",
            channel=self.default_channel, fields={"file": p.file, "line": p.line, "error": p.message}))

    def event(self, ev: AlertEvent) -> None:
        """An alert transition -> incident rows and a notice (scrubbed of the monitor's secrets)."""
        m = ev.monitor
        text = _TEXTS[ev.kind]
        if ev.kind == "down":
            self.in_db(self.history.open_incident, m.id, ev.since or ev.ts, ev.error)
        elif ev.kind == "resolved":
            self.in_db(self.history.resolve_incident, m.id, ev.ts)
            if ev.fields.get("silent"):
                return
        span = human_duration(ev.ts - (ev.since or ev.ts))
        fields = {"monitor": m.id, "targets": ", ".join(m.public_targets), "file": f"{m.file}:{m.line}",
                  "since": iso(ev.since), **ev.fields}
        if ev.error:
            fields["error"] = ev.error
        if ev.kind == "reminder":
            fields["reminder"] = True
        if ev.kind == "resolved":
            fields["down_for"] = span
        expires_iso = iso(ev.fields.get("expires"))
        message = text[2].format(error=ev.error, failures=ev.failures, since=iso(ev.since), span=span,
                                 expires_iso=expires_iso, **ev.fields)
        notice = Notice(tool="pulse", level=text[0], title=text[1].format(name=m.display_name, **ev.fields),
                        message=m.scrub(message), channel=m.channel or self.default_channel,
                        fields=redact_obj(fields, m.secrets))
        self.send(notice)

    def close(self, timeout: float) -> None:
        """Stop the threads: what is queued gets `timeout` seconds, then is abandoned (a hung
        database or Slack must not keep a SIGTERM'd service alive)."""
        for name, worker in (("history", self._db), ("notices", self._notify)):
            if not worker.close(timeout):
                log.error("pulse: %s still busy after %gs at shutdown; not waiting for it", name, timeout)


# kind -> (level, title, message); formatted with the event's fields
_TEXTS: dict[str, tuple[str, str, str]] = {
    "down": ("failure", "{name} is down", "{error} ({failures} failed checks in a row since {since})"),
    "reminder": ("failure", "{name} is still down", "down for {span}: {error}"),
    "resolved": ("success", "{name} is back up", "resolved after {span} down"),
    "slow": ("warning", "{name} is slow", "{stat} response time {response_ms:g} ms over the last {checks} checks "
                                          "(threshold {threshold_ms:g} ms)"),
    "fast": ("success", "{name} is fast again", "{stat} response time {response_ms:g} ms after {span} slow "
                                                "(threshold {threshold_ms:g} ms)"),
    "cert": ("warning", "{name}: TLS certificate expires in {days_left} days",
             "the certificate expires on {expires_iso} (warning at {threshold_days} days left)"),
}
