"""Check history and incidents: SQLite by default, PostgreSQL when `pulse.database_url` says so.

Writes come in batches from the service's writer (one transaction per batch: executemany on
SQLite, COPY on PostgreSQL), never one commit per check: at 1,000 checks/s a commit each would
be the bottleneck. Reads (status page, API, CLI) use their own connection per thread; SQLite
runs in WAL mode so readers never block the writer (https://www.sqlite.org/wal.html).
The tables and their rows are in tables.py.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable

from shipyard.errors import ConfigError, TransientError
from shipyard.pulse.model import CheckResult
from shipyard.pulse.tables import (
    COLUMNS,
    HOUR,
    TARGET_COLUMNS,
    SCHEMA,
    UPSERT_HOURLY,
    WINDOWS,
    ceil_hour,
    check_row,
    floor_hour,
    hourly_rows,
    target_rows,
)

def _resilient(fn):
    """On any error, roll back and drop this thread's connection so the next call reconnects:
    after a database restart or a killed session, writes resume by themselves."""

    @functools.wraps(fn)
    def wrapper(self: "HistoryStore", *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except Exception:
            self._drop()
            raise

    return wrapper


class HistoryStore:
    """The base class holds the SQL; subclasses open connections and write batches."""

    placeholder = "?"

    def __init__(self) -> None:
        self._local = threading.local()
        self._conns: list[Any] = []
        self._lock = threading.Lock()

    # connections ---------------------------------------------------------------------------
    def _connect(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _conn(self) -> Any:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._connect()
            self._local.conn = c
            with self._lock:
                self._conns.append(c)
        return c

    def _drop(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is None:
            return
        self._local.conn = None
        with self._lock:
            if c in self._conns:
                self._conns.remove(c)
        for step in (c.rollback, c.close):
            try:
                step()
            except Exception:  # noqa: BLE001 - the connection may already be gone
                pass

    def close(self) -> None:
        with self._lock:
            for c in self._conns:
                try:
                    c.close()
                except Exception:  # noqa: BLE001 - closing from another thread at shutdown
                    pass
            self._conns.clear()
        self._local = threading.local()

    def _q(self, sql: str) -> str:
        return sql.replace("?", self.placeholder) if self.placeholder != "?" else sql

    @_resilient
    def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        c = self._conn()
        cur = c.execute(self._q(sql), tuple(params))
        rows = cur.fetchall()
        self._end_read(c)
        return rows

    def _end_read(self, conn: Any) -> None:
        pass

    @_resilient
    def init_schema(self) -> None:
        c = self._conn()
        for stmt in SCHEMA:
            c.execute(stmt)
        c.commit()

    # writes --------------------------------------------------------------------------------
    @_resilient
    def write_checks(self, results: list[CheckResult]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @_resilient
    def open_incident(self, monitor_id: str, started: float, error: str | None) -> None:
        c = self._conn()
        c.execute(self._q("INSERT INTO pulse_incidents (monitor_id, started, resolved, error) VALUES (?, ?, NULL, ?)"),
                  (monitor_id, started, error))
        c.commit()

    @_resilient
    def resolve_incident(self, monitor_id: str, resolved: float) -> None:
        c = self._conn()
        c.execute(self._q("UPDATE pulse_incidents SET resolved = ? WHERE monitor_id = ? AND resolved IS NULL"),
                  (resolved, monitor_id))
        c.commit()

    @_resilient
    def prune(self, before: float, rollups_before: float | None = None) -> None:
        """Drop raw checks older than `before` (and hourly rollups older than
        `rollups_before`, when given); resolved incidents go with the raw checks."""
        c = self._conn()
        c.execute(self._q("DELETE FROM pulse_checks WHERE ts < ?"), (before,))
        c.execute(self._q("DELETE FROM pulse_target_checks WHERE ts < ?"), (before,))
        if rollups_before is not None:
            c.execute(self._q("DELETE FROM pulse_hourly WHERE hour < ?"), (rollups_before,))
        c.execute(self._q("DELETE FROM pulse_incidents WHERE resolved IS NOT NULL AND resolved < ?"), (before,))
        c.commit()

    # reads ---------------------------------------------------------------------------------
    def uptime(self, now: float, monitor_ids: list[str] | None = None) -> dict[str, dict[str, float | None]]:
        """Share of successful checks per window [now - w, now) (maintenance excluded); None
        when there was no check in the window.

        Exact, and cheap at any history size: whole hours come from `pulse_hourly`; only the
        two partial hours at the window's ends are counted from raw checks.
        """
        if monitor_ids is not None and not monitor_ids:
            return {}
        cur = floor_hour(now)
        edges = []  # (window start, first whole hour) per window
        for w in WINDOWS.values():
            lo = now - w
            edges.append((lo, min(ceil_hour(lo), cur)))
        where_ids, id_params = "", []
        if monitor_ids is not None:
            where_ids = f" AND monitor_id IN ({', '.join('?' for _ in monitor_ids)})"
            id_params = list(monitor_ids)

        cols, params = [], []
        for _, first in edges:
            cols.append("SUM(CASE WHEN hour >= ? THEN ok ELSE 0 END), SUM(CASE WHEN hour >= ? THEN checks ELSE 0 END)")
            params += [first, first]
        hourly_sql = (f"SELECT monitor_id, {', '.join(cols)} FROM pulse_hourly "
                      f"WHERE hour >= ? AND hour < ?{where_ids} GROUP BY monitor_id")
        params += [min(e[1] for e in edges), cur, *id_params]

        rcols, rparams, ranges, rng_params = [], [], [], []
        for lo, first in edges:
            rcols.append("SUM(CASE WHEN ts >= ? AND ts < ? AND ok THEN 1 ELSE 0 END), "
                         "SUM(CASE WHEN ts >= ? AND ts < ? THEN 1 ELSE 0 END)")
            rparams += [lo, first, lo, first]
            ranges.append("(ts >= ? AND ts < ?)")
            rng_params += [lo, first]
        rcols.append("SUM(CASE WHEN ts >= ? AND ok THEN 1 ELSE 0 END), SUM(CASE WHEN ts >= ? THEN 1 ELSE 0 END)")
        rparams += [cur, cur]
        ranges.append("(ts >= ? AND ts < ?)")
        rng_params += [cur, now]
        raw_sql = (f"SELECT monitor_id, {', '.join(rcols)} FROM pulse_checks WHERE NOT maintenance "
                   f"AND ({' OR '.join(ranges)}){where_ids} GROUP BY monitor_id")

        totals: dict[str, list[int]] = {}
        for row in self._fetch(hourly_sql, params):
            t = totals.setdefault(row[0], [0] * (2 * len(WINDOWS)))
            for i in range(2 * len(WINDOWS)):
                t[i] += int(row[1 + i] or 0)
        for row in self._fetch(raw_sql, [*rparams, *rng_params, *id_params]):
            t = totals.setdefault(row[0], [0] * (2 * len(WINDOWS)))
            now_ok, now_n = int(row[-2] or 0), int(row[-1] or 0)
            for i in range(len(WINDOWS)):
                t[2 * i] += int(row[1 + 2 * i] or 0) + now_ok
                t[2 * i + 1] += int(row[2 + 2 * i] or 0) + now_n
        out: dict[str, dict[str, float | None]] = {}
        for mid, t in totals.items():
            out[mid] = {name: (t[2 * i] / t[2 * i + 1]) if t[2 * i + 1] else None
                        for i, name in enumerate(WINDOWS)}
        return out

    def series(self, now: float, hours: int = 24,
               monitor_ids: list[str] | None = None) -> dict[str, list[tuple[float, float | None, float]]]:
        """Per monitor and hour over the last `hours` hours (the current one included):
        (hour start, mean response time in ms of successful checks, share of successful checks)."""
        if monitor_ids is not None and not monitor_ids:
            return {}
        first = floor_hour(now) - (hours - 1) * HOUR
        sql = ("SELECT monitor_id, hour, rtt_sum, rtt_n, ok, checks FROM pulse_hourly "
               "WHERE hour >= ? AND hour <= ?")
        params: list[Any] = [first, now]
        if monitor_ids is not None:
            sql += f" AND monitor_id IN ({', '.join('?' for _ in monitor_ids)})"
            params += monitor_ids
        sql += " ORDER BY monitor_id, hour"
        out: dict[str, list[tuple[float, float | None, float]]] = {}
        for mid, hour, rtt_sum, rtt_n, ok, checks in self._fetch(sql, params):
            out.setdefault(mid, []).append(
                (float(hour), float(rtt_sum) / rtt_n if rtt_n else None, ok / checks if checks else 0.0))
        return out

    def incidents(self, limit: int = 20, monitor_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT monitor_id, started, resolved, error FROM pulse_incidents"
        params: list[Any] = []
        if monitor_id is not None:
            sql += " WHERE monitor_id = ?"
            params.append(monitor_id)
        sql += " ORDER BY started DESC LIMIT ?"
        params.append(int(limit))
        return [{"monitor_id": r[0], "started": r[1], "resolved": r[2], "error": r[3]}
                for r in self._fetch(sql, params)]

    def open_incidents(self) -> dict[str, float]:
        """monitor id -> start of its ongoing incident (to carry 'down' across a restart)."""
        return {r[0]: r[1] for r in self._fetch(
            "SELECT monitor_id, MIN(started) FROM pulse_incidents WHERE resolved IS NULL GROUP BY monitor_id")}

    def recent(self, monitor_id: str, limit: int = 50, since: float | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM pulse_checks WHERE monitor_id = ?"
        params: list[Any] = [monitor_id]
        if since is not None:
            sql += " AND ts > ?"
            params.append(since)
        sql += " ORDER BY ts DESC LIMIT ?"
        params.append(int(limit))
        return [dict(zip(COLUMNS, (r[0], r[1], bool(r[2]), *r[3:7], bool(r[7])), strict=True))
                for r in self._fetch(sql, params)]

    def recent_targets(self, monitor_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """Per-URL results of the monitor's recent checks (monitors with several targets)."""
        rows = self._fetch(f"SELECT {', '.join(TARGET_COLUMNS)} FROM pulse_target_checks WHERE monitor_id = ? "
                           "ORDER BY ts DESC, target LIMIT ?", [monitor_id, int(limit)])
        return [dict(zip(TARGET_COLUMNS, (r[0], r[1], r[2], bool(r[3]), *r[4:]), strict=True)) for r in rows]

    def count(self, monitor_id: str | None = None) -> int:
        if monitor_id is None:
            return int(self._fetch("SELECT COUNT(*) FROM pulse_checks")[0][0])
        return int(self._fetch("SELECT COUNT(*) FROM pulse_checks WHERE monitor_id = ?", [monitor_id])[0][0])


class SQLiteHistory(HistoryStore):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.url = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _connect(self) -> sqlite3.Connection:
        c = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")
        return c

    @_resilient
    def write_checks(self, results: list[CheckResult]) -> None:
        if not results:
            return
        c = self._conn()
        with c:  # one transaction per batch: the raw rows and their hourly rollups
            c.executemany(f"INSERT INTO pulse_checks ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                          [check_row(r) for r in results])
            c.executemany(UPSERT_HOURLY, hourly_rows(results))
            c.executemany(f"INSERT INTO pulse_target_checks ({', '.join(TARGET_COLUMNS)}) "
                          f"VALUES ({', '.join('?' * len(TARGET_COLUMNS))})", target_rows(results))


class PostgresHistory(HistoryStore):
    placeholder = "%s"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def _connect(self) -> Any:
        # Imported here to cut start-up: only PostgreSQL history pays for loading psycopg.
        import psycopg

        try:
            return psycopg.connect(self.url)
        except psycopg.OperationalError as exc:
            raise TransientError(f"cannot connect to the pulse database: {exc}".strip(),
                                 hint="check pulse.database_url (SHIPYARD_PULSE__DATABASE_URL) and that "
                                      "PostgreSQL is running") from None

    def _end_read(self, conn: Any) -> None:
        # psycopg opens a transaction on the first statement; end it so a long-lived read
        # connection does not hold a snapshot (and block VACUUM) forever.
        conn.rollback()

    @_resilient
    def write_checks(self, results: list[CheckResult]) -> None:
        if not results:
            return
        c = self._conn()
        with c.cursor() as cur:
            # COPY is PostgreSQL's bulk path (https://www.postgresql.org/docs/current/sql-copy.html).
            with cur.copy(f"COPY pulse_checks ({', '.join(COLUMNS)}) FROM STDIN") as cp:
                for r in results:
                    cp.write_row(check_row(r))
            cur.executemany(self._q(UPSERT_HOURLY), hourly_rows(results))
            per_target = target_rows(results)
            if per_target:
                with cur.copy(f"COPY pulse_target_checks ({', '.join(TARGET_COLUMNS)}) FROM STDIN") as cp:
                    for row in per_target:
                        cp.write_row(row)
        c.commit()


def open_history(database_url: str | None = None, *, default_dir: Path | None = None) -> HistoryStore:
    """The history store named by a URL: None -> SQLite file `pulse.sqlite3` in `default_dir`,
    `sqlite:///path` or a path -> SQLite there, `postgresql://...` -> PostgreSQL."""
    if not database_url:
        store: HistoryStore = SQLiteHistory((default_dir or Path.cwd()) / "pulse.sqlite3")
    elif database_url.startswith(("postgresql://", "postgres://")):
        store = PostgresHistory(database_url)
    elif database_url.startswith("sqlite:///"):
        store = SQLiteHistory(Path(database_url[len("sqlite:///"):]))
    elif "://" in database_url:
        raise ConfigError(f"pulse.database_url {database_url!r} is not supported",
                          hint="use postgresql://user@host/db, sqlite:///path/to/file, or leave it unset for SQLite")
    else:
        store = SQLiteHistory(Path(database_url))
    store.init_schema()
    return store
