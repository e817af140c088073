"""The monitor: one asyncio loop that reloads, schedules, checks and records.

- `ConfigReloader` (reloader.py) says which monitors the config folder gives; the watcher task
  polls its fingerprint every `reload_interval` seconds.
- `Scheduler` (scheduler.py) says which monitor is due; each due monitor runs as its own task
  on the shared client pool (a monitor whose previous check still runs skips that slot,
  counted); `lag` = start - scheduled time is recorded with every result.
- `observe` (alerting.py) turns results into alert transitions.
- `Recorder` (recorder.py) writes results in batches every `flush_interval`, incidents and
  notices, on its own threads.
- `StatusView` (status.py) is the read-only view the page, the API and /metrics use.
All time comes from the injected `Clock`, so tests drive the whole service on their own time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from pathlib import Path
from typing import Any, Awaitable, Callable

from shipyard.errors import ConfigError
from shipyard.notify import Notifier, get_notifier
from shipyard.pulse import push
from shipyard.pulse.alerting import MonitorState, observe, observe_cert, observe_speed
from shipyard.pulse.checks import ClientPool, run_check
from shipyard.pulse.clock import Clock, SystemClock
from shipyard.pulse.config import ParseLimits
from shipyard.pulse.history import HistoryStore, open_history
from shipyard.pulse.model import CheckResult, Monitor, TargetResult
from shipyard.pulse.recorder import Recorder
from shipyard.pulse.reloader import ConfigReloader
from shipyard.pulse.scheduler import Scheduler
from shipyard.pulse.status import StatusView
from shipyard.pulse.sync import SyncReport, sync
from shipyard.settings import Settings, get_settings

log = logging.getLogger("shipyard.pulse")
# The web layer's serve(status_view, host, port, push_handler) -> a running server (.task,
# .port, .shutdown(grace)).
Serve = Callable[[StatusView, str, int, Callable[[str, str, "str | None", str], "tuple[int, str]"]], Awaitable[Any]]
# httpx and httpcore log every request line with its full URL (query strings, expanded
# ${SECRETS} in paths) at INFO/DEBUG: pulse logs its own, scrubbed, messages instead.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)
_IDLE = 3600.0  # the scheduler's sleep with nothing scheduled (a reload wakes it)


class PulseService:
    def __init__(self, config_dir: str | Path, *, settings: Settings | None = None,
                 history: HistoryStore | None = None, notifier: Notifier | None = None,
                 clock: Clock | None = None, sync_from: str | None = None, sync_every: float = 60.0) -> None:
        self.settings = settings = settings or get_settings()
        opts = settings.pulse
        self.config_dir = Path(config_dir)
        self.clock: Clock = clock or SystemClock()
        self._own_history = history is None
        self.history = history or open_history(opts.database_url, default_dir=settings.config_dir)
        self.default_channel = opts.channel
        self.reloader = ConfigReloader(self.config_dir, ParseLimits.from_settings(opts))
        self.scheduler = Scheduler()
        self.recorder = Recorder(self.history, notifier or get_notifier(settings), opts.channel)
        self.status = StatusView(self)
        self.max_body = opts.max_body_bytes
        self.push_limit = push.RateLimit(opts.push_rate_per_minute)
        self.cert_warn_days = tuple(sorted(set(opts.cert_warn_days), reverse=True))
        self.monitors: dict[str, Monitor] = {}
        self.states: dict[str, MonitorState] = {}
        self.running: dict[str, asyncio.Task] = {}
        self.lags: deque[float] = deque(maxlen=200_000)
        self.checks_total = self.skipped_total = self.reloads = 0
        self.started_at: float | None = None
        self.port: int | None = None
        self._fingerprint: object = None
        self._stop: asyncio.Event | None = None
        self._wake = asyncio.Event()
        # `run --sync-from`: the seed's bucket -> folder step, inside the service.
        self.sync_from, self.sync_every = sync_from, sync_every
        self.last_sync: SyncReport | None = None
        self.sync_errors = 0
        self._pool: ClientPool | None = None

    # ---- config ---------------------------------------------------------------------------
    def reload(self) -> bool:
        """Re-read the config folder; True when the set of monitors changed."""
        res = self.reloader.reload()
        if res is None:
            self._fingerprint = None  # try again on the next scan
            return False
        for problem, kept in res.new_problems:
            self.recorder.problem(problem, kept=kept)
        for name in res.fixed:
            log.info("pulse: %s is valid again", name)
        return self._apply(res.monitors)

    def _apply(self, merged: dict[str, Monitor]) -> bool:
        added = updated = removed = 0
        now = self.clock.now()
        for mid in list(self.monitors):
            if mid not in merged or not merged[mid].enabled:
                del self.monitors[mid]
                st = self.states.pop(mid, None)
                if st is not None and st.triggered:
                    # Removed while down: close its incident (no notice; nobody watches it now).
                    self.recorder.in_db(self.history.resolve_incident, mid, now)
                self.scheduler.remove(mid)
                removed += 1
        for mid, m in merged.items():
            if not m.enabled:
                continue
            old = self.monitors.get(mid)
            self.monitors[mid] = m  # same check or not: file/line may have moved
            if old is not None and old.fingerprint() == m.fingerprint():
                continue
            st = self.states.setdefault(mid, MonitorState())
            if m.type == "push" and st.last_ping is None:
                st.last_ping = now  # a push monitor gives its cron every + grace from now
            if old is None or old.schedule != m.schedule:
                self.scheduler.add(m, now)
                self._wake.set()
            log.debug("pulse: monitor %s %s (%s, %s)", mid, "updated" if old else "added", m.schedule.text,
                      ", ".join(m.public_targets))
            added, updated = (added + 1, updated) if old is None else (added, updated + 1)
        if added or updated or removed:
            self.reloads += 1
            log.info("pulse: %d monitors (%d added, %d updated, %d removed)",
                     len(self.monitors), added, updated, removed)
            return True
        return False

    # ---- running --------------------------------------------------------------------------
    async def _scheduler_loop(self) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            now = self.clock.now()
            for m, due in self.scheduler.pop_due(now, self.monitors):
                if m.type == "push":
                    st = self.states.setdefault(m.id, MonitorState())
                    missed = push.overdue(m, st.last_ping if st.last_ping is not None else now,
                                          st.last_miss, now)
                    if missed is not None:
                        st.last_miss = now
                        self._record(m, missed)
                    continue
                if m.id in self.running:
                    self.skipped_total += 1
                else:
                    self.running[m.id] = asyncio.create_task(self._check(m, due))
            nxt = self.scheduler.next_due()
            # Sleep until the next slot, or until a reload adds a monitor (it may be due sooner).
            sleeper = asyncio.ensure_future(self.clock.sleep(_IDLE if nxt is None else max(nxt - now, 0.0)))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (sleeper, waker):
                    t.cancel()
                await asyncio.gather(sleeper, waker, return_exceptions=True)
            self._wake.clear()

    async def _check(self, m: Monitor, due: float) -> None:
        try:
            assert self._pool is not None
            async with self._pool.slot(m) as client:
                start = self.clock.now()
                out = await run_check(client, m, self.max_body)
            lag_ms = max(0.0, (start - due) * 1000)
            self.lags.append(lag_ms)
            per = tuple(TargetResult(m.scrub(t.target), t.ok, t.rtt_ms, t.status, m.scrub(t.error) if t.error else None)
                        for t in out.targets)
            self._record(m, CheckResult(m.id, start, out.ok, out.rtt_ms, out.status,
                                        m.scrub(out.error) if out.error else None, lag_ms, False,
                                        out.cert_expires, per))
        except Exception:  # noqa: BLE001 - one broken check must not stop the service
            log.exception("pulse: check %s crashed", m.id)
        finally:
            self.running.pop(m.id, None)

    def _record(self, m: Monitor, r: CheckResult) -> None:
        """One result: into the history batch, then through the alert rules."""
        r.maintenance = m.in_maintenance(r.ts)
        self.checks_total += 1
        self.recorder.add(r)
        current = self.monitors.get(m.id)
        if current is None:
            return  # removed while it ran: record, do not alert
        state = self.states.setdefault(m.id, MonitorState())
        now = self.clock.now()
        warn = current.cert_warn_days if current.cert_warn_days is not None else self.cert_warn_days
        for ev in [*observe(state, current, r, now), *observe_speed(state, current, r, now),
                   *observe_cert(state, current, r, now, warn)]:
            self.recorder.event(ev)

    def receive_push(self, token: str, status: str, msg: str | None, client: str) -> tuple[int, str]:
        """POST /api/push/<token> (on the loop): (HTTP status, what to answer)."""
        now = self.clock.now()
        m = push.find(token, self.monitors)
        if not self.push_limit.allow(f"token:{m.id}" if m else f"client:{client}", now):
            return 429, "too many pushes; slow down"
        if m is None:
            return 404, "no push monitor has this token"
        if status not in ("up", "down"):
            return 400, "status must be up or down"
        st = self.states.setdefault(m.id, MonitorState())
        st.last_ping, st.last_miss = now, None
        self._record(m, push.ping_result(m, now, status, msg))
        return 200, f"ok: {m.id} {status}"

    async def _writer(self) -> None:
        assert self._stop is not None
        opts = self.settings.pulse
        last_prune = None
        while not self._stop.is_set():
            await self.clock.sleep(opts.flush_interval)
            await self.recorder.flush()
            now = self.clock.now()
            if last_prune is None or now - last_prune > 3600:
                last_prune = now
                self.recorder.in_db(self.history.prune, now - opts.retention_days * 86400,
                                    now - opts.rollup_retention_days * 86400)

    async def _watcher(self) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            await self.clock.sleep(self.settings.pulse.reload_interval)
            fp = self.reloader.fingerprint()
            if fp is not None and fp == self._fingerprint:
                continue
            self._fingerprint = fp
            try:
                self.reload()
            except Exception:  # noqa: BLE001 - a reload bug must not stop the monitor
                log.exception("pulse: reload failed; keeping the current monitors")

    async def _restore_incidents(self) -> None:
        """A monitor that was down when the service stopped is still down after a restart:
        no second 'down' notice; it resolves (and says so) after success_threshold successes."""
        try:
            ongoing = await self.recorder.read(self.history.open_incidents)
        except Exception:  # noqa: BLE001 - history is best effort here; checks must start
            log.exception("pulse: could not read open incidents")
            return
        now = self.clock.now()
        for mid, started in ongoing.items():
            st = self.states.get(mid)
            if st is not None:
                st.triggered, st.incident_started, st.last_alert_ts = True, started, now

    def sync_now(self) -> None:
        """One `pulse sync` of sync_from into the config folder (blocking: run off the loop)."""
        assert self.sync_from is not None
        try:
            rep = sync(self.sync_from, self.config_dir)
        except Exception as exc:  # noqa: BLE001 - a bucket outage keeps the current version
            self.sync_errors += 1
            log.error("pulse: sync from %s failed (%s); keeping the current monitor files", self.sync_from, exc)
            return
        self.last_sync = rep
        if rep.changed:
            log.info("pulse: synced %s: %d added, %d updated, %d removed (version %s)", rep.source,
                     len(rep.added), len(rep.updated), len(rep.removed), rep.version)

    async def _syncer(self) -> None:
        assert self._stop is not None
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            await self.clock.sleep(self.sync_every)
            await loop.run_in_executor(None, self.sync_now)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def run(self, *, port: int | None = None, host: str = "127.0.0.1",
                  ready: Callable[["PulseService"], None] | None = None, serve: Serve | None = None) -> None:
        """Run until `stop()`; with `port`, `serve` (shipyard.pulse.web.serve, handed in by the
        interface that wants a page: the service does not depend on its web layer) serves the
        status page, API and /metrics from this service's StatusView."""
        if port is not None and serve is None:
            raise ValueError("run(port=...) needs serve=shipyard.pulse.web.serve")
        if self.sync_from is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.sync_now)
            if self.last_sync is None and not self.config_dir.is_dir():
                raise ConfigError(f"the first sync from {self.sync_from} failed and {str(self.config_dir)!r} "
                                  "does not exist yet", hint="check --sync-from (see the log above)")
        if not self.config_dir.is_dir():
            raise ConfigError(f"monitor config directory {str(self.config_dir)!r} does not exist",
                              hint="create it, or run `shipyard pulse sync --from ... --to DIR` first")
        self._stop = asyncio.Event()
        self.started_at = self.clock.now()
        self._pool = ClientPool(self.settings.pulse.concurrency)
        self._fingerprint = self.reloader.fingerprint()
        self.reload()
        await self._restore_incidents()
        server = None
        tasks = [asyncio.create_task(self._scheduler_loop(), name="pulse-scheduler"),
                 asyncio.create_task(self._writer(), name="pulse-writer"),
                 asyncio.create_task(self._watcher(), name="pulse-watcher")]
        if self.sync_from is not None:
            tasks.append(asyncio.create_task(self._syncer(), name="pulse-sync"))
        try:
            if port is not None and serve is not None:
                server = await serve(self.status, host, port, self.receive_push)
                tasks.append(server.task)
                self.port = server.port
            log.info("pulse: %d monitors from %s%s", len(self.monitors), self.config_dir,
                     f"; status page on http://{host}:{self.port}/" if self.port else "")
            if ready is not None:
                ready(self)
            await self._stop.wait()
        finally:
            await self._shutdown(server, tasks)

    async def _shutdown(self, server, tasks: list[asyncio.Task]) -> None:
        """Bounded by pulse.stop_timeout: checks still running then are cancelled, whatever
        they wait for; a hung database or notifier is not waited for past it."""
        assert self._stop is not None and self._pool is not None
        grace = self.settings.pulse.stop_timeout
        self._stop.set()
        if server is not None:
            await server.shutdown(grace)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        running = list(self.running.values())
        if running:
            await asyncio.wait(running, timeout=grace)
            for t in running:
                t.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        try:
            await asyncio.wait_for(self.recorder.flush(), grace or None)
        except asyncio.TimeoutError:
            log.error("pulse: the last results were not written within %gs", grace)
        await self._pool.aclose()
        await asyncio.get_running_loop().run_in_executor(None, self.recorder.close, grace)
        if self._own_history:
            self.history.close()
