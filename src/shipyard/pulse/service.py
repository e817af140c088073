"""The monitor: schedules checks, records results, alerts, reloads its config, serves the page.

One asyncio loop runs everything:
- the scheduler keeps a heap of (next fire time, monitor); fire times come from the schedule
  (never from when a check finished), so nothing drifts; `lag` = start - scheduled time is
  recorded with every result and summarised at /metrics;
- each due monitor runs as its own task on a shared httpx.AsyncClient (bounded connection
  pool); a monitor whose previous check is still running skips that slot (counted);
- results go to an in-memory batch that a writer flushes every `flush_interval` seconds in one
  transaction, on a single database thread (a DB outage keeps the batch for the next try);
- the watcher polls the config directory's file list, sizes and mtimes every `reload_interval`
  seconds; on a change it re-parses only changed files, validates them, and keeps the last good
  version of a file that became invalid (log + one `warning` notice naming file and line);
- notices go through `shipyard.notify.get_notifier`, on their own thread, in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from shipyard.notify import Notice, Notifier, get_notifier
from shipyard.pulse.alerting import AlertEvent, MonitorState, observe
from shipyard.pulse.checks import CheckResult, ClientPool, run_check
from shipyard.pulse.config import ConfigProblem, Monitor, monitor_files, parse_text
from shipyard.pulse.history import HistoryStore, open_history

log = logging.getLogger("shipyard.pulse")


def _iso(ts: float | None) -> str | None:
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


class _FileEntry:
    __slots__ = ("digest", "monitors", "problem")

    def __init__(self, digest: str, monitors: list[Monitor] | None, problem: ConfigProblem | None) -> None:
        self.digest, self.monitors, self.problem = digest, monitors, problem


class PulseService:
    def __init__(
        self,
        config_dir: str | Path,
        *,
        settings: Any = None,
        history: HistoryStore | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        reload_interval: float = 1.0,
        flush_interval: float = 0.5,
        concurrency: int | None = None,
        retention_days: float | None = None,
    ) -> None:
        if settings is None:
            from shipyard.settings import get_settings

            settings = get_settings()
        self.settings = settings
        self.config_dir = Path(config_dir)
        self._own_history = history is None
        self.history = history or open_history(settings.pulse.database_url, default_dir=settings.config_dir)
        self.notifier = notifier or get_notifier(settings)
        self.clock = clock
        self.reload_interval = reload_interval
        self.flush_interval = flush_interval
        extra = settings.pulse.model_extra or {}
        # Checks in flight at once (pulse.concurrency); more wait for a slot, and that wait
        # shows up as scheduling lag.
        self.concurrency = int(concurrency if concurrency is not None else extra.get("concurrency", 100))
        self.retention = float(retention_days if retention_days is not None
                               else extra.get("retention_days", 35)) * 86400
        self.rollup_retention = float(extra.get("rollup_retention_days", 400)) * 86400
        self.default_channel = settings.pulse.channel

        self.monitors: dict[str, Monitor] = {}
        self.states: dict[str, MonitorState] = {}
        self.problems: dict[str, ConfigProblem] = {}  # file -> current problem
        self._files: dict[str, _FileEntry] = {}
        self._good: dict[str, list[Monitor]] = {}  # file -> last good monitors
        self._fingerprint: Any = None
        self._dir_missing_reported = False
        self._heap: list[tuple[float, int, str, int]] = []
        self._gen: dict[str, int] = {}
        self._seq = 0
        self._running: dict[str, asyncio.Task] = {}
        self._pending: list[CheckResult] = []
        self.lags: deque[float] = deque(maxlen=200_000)
        self.checks_total = 0
        self.skipped_total = 0
        self.written_total = 0
        self.reloads = 0
        self.started_at: float | None = None
        self._stop: asyncio.Event | None = None
        self._pool: ClientPool | None = None
        self._db = ThreadPoolExecutor(1, thread_name_prefix="pulse-db")
        self._notify = ThreadPoolExecutor(1, thread_name_prefix="pulse-notify")
        self.port: int | None = None

    # ---- config ---------------------------------------------------------------------------
    def _scan(self) -> Any:
        try:
            real = os.path.realpath(self.config_dir)
            files = monitor_files(self.config_dir)
            return real, tuple((str(p), st.st_mtime_ns, st.st_size)
                               for p in files for st in [p.stat()])
        except OSError:
            return None

    def reload(self) -> bool:
        """Re-read the config directory; returns True when the set of monitors changed."""
        if not self.config_dir.is_dir():
            if not self._dir_missing_reported:
                log.warning("pulse: config directory %s is missing; keeping %d monitors",
                            self.config_dir, len(self.monitors))
                self._dir_missing_reported = True
            return False
        self._dir_missing_reported = False
        files: dict[str, _FileEntry] = {}
        # Resolve the sync's symlink once, so one reload reads one version of the tree.
        root = Path(os.path.realpath(self.config_dir))
        for p in monitor_files(root):
            name = str(p.relative_to(root))
            try:
                data = p.read_bytes()
            except OSError:
                # Vanished between listing and reading (an old version pruned): do not treat
                # it as deleted; try the whole reload again on the next scan.
                self._fingerprint = None
                return False
            digest = hashlib.sha1(data).hexdigest()
            old = self._files.get(name)
            if old is not None and old.digest == digest:
                files[name] = old
                continue
            try:
                files[name] = _FileEntry(digest, parse_text(data.decode("utf-8"), name), None)
            except UnicodeDecodeError:
                files[name] = _FileEntry(digest, None, ConfigProblem(name, None, "not UTF-8 text"))
            except ConfigProblem as exc:
                files[name] = _FileEntry(digest, None, exc)
        self._files = files

        # Merge in file order. An invalid file, or one whose ids clash with an earlier file,
        # contributes its last good version (if any) and is reported.
        merged: dict[str, Monitor] = {}
        problems: dict[str, ConfigProblem] = {}
        for name in sorted(files):
            entry = files[name]
            cand = entry.monitors
            problem = entry.problem
            if cand is not None:
                clash = next((m for m in cand if m.id in merged), None)
                if clash is not None:
                    first = merged[clash.id]
                    problem = ConfigProblem(
                        name, clash.line, f"monitor id {clash.id!r} is already defined in {first.file}:{first.line}",
                        "ids must be unique across all monitor files; rename one of them")
                    cand = None
            if cand is None:
                problems[name] = problem  # type: ignore[assignment]
                good = self._good.get(name)
                if good and not any(m.id in merged for m in good):
                    cand = good
                else:
                    continue
            else:
                self._good[name] = cand
            for m in cand:
                merged[m.id] = m
        for name in list(self._good):
            if name not in files:
                del self._good[name]  # deleted file: its monitors go (deletions propagate)

        for name, problem in problems.items():
            prev = self.problems.get(name)
            if prev is None or str(prev) != str(problem):
                self._report_problem(problem, kept=name in self._good)
        for name in self.problems:
            if name not in problems:
                log.info("pulse: %s is valid again", name)
        self.problems = problems
        return self._apply(merged)

    def _report_problem(self, p: ConfigProblem, *, kept: bool) -> None:
        what = "keeping its last good version" if kept else "its monitors are not loaded"
        log.error("pulse: invalid monitor file %s; %s", p, what)
        self._send(Notice(
            tool="pulse", level="warning", title=f"Invalid monitor file {p.where}",
            message=f"{p.message}" + (f" (fix: {p.hint})" if p.hint else "") + f"; {what}.",
            channel=self.default_channel,
            fields={"file": p.file, "line": p.line, "error": p.message},
        ))

    def _apply(self, merged: dict[str, Monitor]) -> bool:
        added = updated = removed = 0
        now = self.clock()
        for mid in list(self.monitors):
            if mid not in merged or not merged[mid].enabled:
                del self.monitors[mid]
                st = self.states.pop(mid, None)
                if st is not None and st.triggered:
                    # Removed while down: close its incident (no notice; nobody watches it now).
                    self._db.submit(self._safe, self.history.resolve_incident, mid, now)
                self._gen[mid] = self._gen.get(mid, 0) + 1
                log.debug("pulse: monitor %s removed", mid)
                removed += 1
        for mid, m in merged.items():
            if not m.enabled:
                continue
            old = self.monitors.get(mid)
            if old is not None and old.fingerprint() == m.fingerprint():
                self.monitors[mid] = m  # same check; file/line may have moved
                continue
            self.monitors[mid] = m
            self.states.setdefault(mid, MonitorState())
            if old is None or old.schedule != m.schedule:
                self._gen[mid] = self._gen.get(mid, 0) + 1
                self._push(m.schedule.first(now, mid), mid)
            log.debug("pulse: monitor %s %s (%s, %s)", mid, "updated" if old else "added",
                      m.schedule.text, ", ".join(m.targets))
            if old is None:
                added += 1
            else:
                updated += 1
        if added or updated or removed:
            self.reloads += 1
            log.info("pulse: %d monitors (%d added, %d updated, %d removed)",
                     len(self.monitors), added, updated, removed)
            return True
        return False

    def _push(self, due: float, mid: str) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, mid, self._gen.get(mid, 0)))

    # ---- running --------------------------------------------------------------------------
    async def _scheduler(self) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            if not self._heap:
                await asyncio.sleep(0.1)
                continue
            due, _, mid, gen = self._heap[0]
            now = self.clock()
            if due > now:
                # Short naps: a reload can add a monitor due sooner than the current head.
                await asyncio.sleep(min(due - now, 0.1))
                continue
            heapq.heappop(self._heap)
            m = self.monitors.get(mid)
            if m is None or gen != self._gen.get(mid, 0):
                continue  # removed or rescheduled since
            self._push(m.schedule.next_after(due, now), mid)
            if mid in self._running:
                self.skipped_total += 1
                continue
            self._running[mid] = asyncio.create_task(self._check(m, due))

    async def _check(self, m: Monitor, due: float) -> None:
        try:
            assert self._pool is not None
            async with self._pool.slot() as client:
                start = self.clock()
                ok, rtt, status, err = await run_check(client, m)
            lag_ms = max(0.0, (start - due) * 1000)
            maint = m.in_maintenance(start)
            r = CheckResult(m.id, start, ok, rtt, status, err, lag_ms, maint)
            self.lags.append(lag_ms)
            self.checks_total += 1
            self._pending.append(r)
            current = self.monitors.get(m.id)
            if current is None:
                return  # removed while it ran: record, do not alert
            state = self.states.setdefault(m.id, MonitorState())
            for ev in observe(state, current, r, self.clock()):
                self._on_event(ev)
        except Exception:  # noqa: BLE001 - one broken check must not stop the service
            log.exception("pulse: check %s crashed", m.id)
        finally:
            self._running.pop(m.id, None)

    def _on_event(self, ev: AlertEvent) -> None:
        m = ev.monitor
        channel = m.channel or self.default_channel
        fields = {"monitor": m.id, "targets": ", ".join(m.targets), "file": f"{m.file}:{m.line}"}
        if ev.kind == "down":
            self._db.submit(self._safe, self.history.open_incident, m.id, ev.since or ev.ts, ev.error)
            self._send(Notice(
                tool="pulse", level="failure", title=f"{m.display_name} is down",
                message=f"{ev.error} ({ev.failures} failed checks in a row since {_iso(ev.since)})",
                channel=channel, fields={**fields, "error": ev.error, "since": _iso(ev.since)}))
        elif ev.kind == "reminder":
            down_for = human_duration(ev.ts - (ev.since or ev.ts))
            self._send(Notice(
                tool="pulse", level="failure", title=f"{m.display_name} is still down",
                message=f"down for {down_for}: {ev.error}", channel=channel,
                fields={**fields, "error": ev.error, "since": _iso(ev.since), "reminder": True}))
        else:
            self._db.submit(self._safe, self.history.resolve_incident, m.id, ev.ts)
            if not ev.fields.get("silent"):
                down_for = human_duration(ev.ts - (ev.since or ev.ts))
                self._send(Notice(
                    tool="pulse", level="success", title=f"{m.display_name} is back up",
                    message=f"resolved after {down_for} down", channel=channel,
                    fields={**fields, "since": _iso(ev.since), "down_for": down_for}))

    def _send(self, notice: Notice) -> None:
        def go() -> None:
            try:
                self.notifier.send(notice)
            except Exception:  # noqa: BLE001 - a notifier outage must not stop monitoring
                log.exception("pulse: could not send notice %r", notice.title)
        self._notify.submit(go)

    @staticmethod
    def _safe(fn: Callable, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001
            log.exception("pulse: history write failed")

    async def flush(self) -> None:
        """Write the pending results in one batch (kept for a retry if the database fails)."""
        batch, self._pending = self._pending, []
        if not batch:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._db, self.history.write_checks, batch)
            self.written_total += len(batch)
        except Exception as exc:  # noqa: BLE001
            log.error("pulse: could not write %d results (%s); will retry", len(batch), exc)
            # Keep at most ~10 minutes at 1,000 checks/s so an outage cannot eat the memory.
            self._pending[:0] = batch[-600_000:]

    async def _writer(self) -> None:
        assert self._stop is not None
        last_prune = 0.0
        while not self._stop.is_set():
            await asyncio.sleep(self.flush_interval)
            await self.flush()
            now = self.clock()
            if now - last_prune > 3600:
                last_prune = now
                self._db.submit(self._safe, self.history.prune, now - self.retention,
                                now - self.rollup_retention)

    async def _watcher(self) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            await asyncio.sleep(self.reload_interval)
            fp = self._scan()
            if fp is None:
                self.reload()  # reports a missing directory once
                continue
            if fp != self._fingerprint:
                self._fingerprint = fp
                try:
                    self.reload()
                except Exception:  # noqa: BLE001 - a reload bug must not stop the monitor
                    log.exception("pulse: reload failed; keeping the current monitors")

    async def _restore_incidents(self) -> None:
        """A monitor that was down when the service stopped is still down after a restart:
        no second 'down' notice; it resolves (and says so) after success_threshold successes."""
        loop = asyncio.get_running_loop()
        try:
            ongoing = await loop.run_in_executor(self._db, self.history.open_incidents)
        except Exception:  # noqa: BLE001 - history is best effort here; checks must start
            log.exception("pulse: could not read open incidents")
            return
        now = self.clock()
        for mid, started in ongoing.items():
            st = self.states.get(mid)
            if st is not None:
                st.triggered = True
                st.incident_started = started
                st.last_alert_ts = now

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def run(self, *, port: int | None = None, host: str = "127.0.0.1",
                  ready: Callable[["PulseService"], None] | None = None) -> None:
        """Run until `stop()`; serves the status page when `port` is given."""
        from shipyard.errors import ConfigError

        if not self.config_dir.is_dir():
            raise ConfigError(f"monitor config directory {str(self.config_dir)!r} does not exist",
                              hint="create it, or run `shipyard pulse sync --from ... --to DIR` first")
        self._stop = asyncio.Event()
        self.started_at = self.clock()
        self._pool = ClientPool(self.concurrency)
        self._fingerprint = self._scan()
        self.reload()
        await self._restore_incidents()
        server = None
        tasks = [asyncio.create_task(self._scheduler(), name="pulse-scheduler"),
                 asyncio.create_task(self._writer(), name="pulse-writer"),
                 asyncio.create_task(self._watcher(), name="pulse-watcher")]
        try:
            if port is not None:
                from shipyard.pulse.web import serve

                server = await serve(self, host, port)
                tasks.append(server.task)
                self.port = server.port
            log.info("pulse: %d monitors from %s%s", len(self.monitors), self.config_dir,
                     f"; status page on http://{host}:{self.port}/" if self.port else "")
            if ready is not None:
                ready(self)
            await self._stop.wait()
        finally:
            self._stop.set()
            if server is not None:
                await server.shutdown()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            running = list(self._running.values())
            if running:
                await asyncio.wait(running, timeout=5)
                for t in running:
                    t.cancel()
            await self.flush()
            await self._pool.aclose()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._db.shutdown)
            await loop.run_in_executor(None, self._notify.shutdown)
            if self._own_history:
                self.history.close()

    # ---- what the page and the API show ---------------------------------------------------
    def lag_percentile(self, q: float) -> float | None:
        if not self.lags:
            return None
        xs = sorted(self.lags)
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    def snapshot(self) -> list[dict[str, Any]]:
        now = self.clock()
        out = []
        for mid in sorted(self.monitors):
            m = self.monitors[mid]
            st = self.states.get(mid) or MonitorState()
            last = st.last
            out.append({
                "id": mid, "name": m.display_name, "type": m.type, "targets": list(m.targets),
                "schedule": m.schedule.text, "status": st.status(m.in_maintenance(now)),
                "channel": m.channel or self.default_channel, "file": m.file, "line": m.line,
                "last_check": _iso(last.ts) if last else None,
                "last_check_ts": last.ts if last else None,
                "ok": last.ok if last else None,
                "rtt_ms": round(last.rtt_ms, 2) if last and last.rtt_ms is not None else None,
                "http_status": last.status if last else None,
                "error": last.error if last and not last.ok else None,
                "consecutive_failures": st.consecutive_failures,
                "incident_since": _iso(st.incident_started),
                "checks": st.checks, "failures": st.failures,
            })
        return out
