"""Check history and incidents: SQLite by default, PostgreSQL when `pulse.database_url` says so.

Writes come in batches from the service's writer (one transaction per batch: executemany on
SQLite, COPY on PostgreSQL), never one commit per check: at 1,000 checks/s a commit each would
be the bottleneck. Reads (status page, API, CLI) use their own connection per thread; SQLite
runs in WAL mode so readers never block the writer
(https://www.sqlite.org/wal.html).

Times are epoch seconds (double precision) so window arithmetic is the same on both engines.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable

from shipyard.errors import ConfigError, TransientError
from shipyard.pulse.checks import CheckResult

WINDOWS = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS pulse_checks (
        monitor_id TEXT NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        ok BOOLEAN NOT NULL,
        rtt_ms DOUBLE PRECISION,
        status INTEGER,
        error TEXT,
        lag_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
        maintenance BOOLEAN NOT NULL DEFAULT FALSE
    )""",
    "CREATE INDEX IF NOT EXISTS pulse_checks_monitor_ts ON pulse_checks (monitor_id, ts)",
    "CREATE INDEX IF NOT EXISTS pulse_checks_ts ON pulse_checks (ts)",
    """CREATE TABLE IF NOT EXISTS pulse_incidents (
        monitor_id TEXT NOT NULL,
        started DOUBLE PRECISION NOT NULL,
        resolved DOUBLE PRECISION,
        error TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS pulse_incidents_monitor ON pulse_incidents (monitor_id, started)",
]

_COLUMNS = ("monitor_id", "ts", "ok", "rtt_ms", "status", "error", "lag_ms", "maintenance")


def _row(r: CheckResult) -> tuple:
    return (r.monitor_id, r.ts, bool(r.ok), r.rtt_ms, r.status, r.error, r.lag_ms, bool(r.maintenance))


class HistoryStore:
    """The base class holds the SQL; subclasses open connections and write batches."""

    placeholder = "?"
    # SQLite's CAST(x AS INTEGER) truncates; PostgreSQL's rounds, so it needs FLOOR.
    bucket_expr = "CAST((ts - ?) / ? AS INTEGER)"

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

    def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        c = self._conn()
        cur = c.execute(self._q(sql), tuple(params))
        rows = cur.fetchall()
        self._end_read(c)
        return rows

    def _end_read(self, conn: Any) -> None:
        pass

    def init_schema(self) -> None:
        c = self._conn()
        for stmt in _SCHEMA:
            c.execute(stmt)
        c.commit()

    # writes --------------------------------------------------------------------------------
    def write_checks(self, results: list[CheckResult]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def open_incident(self, monitor_id: str, started: float, error: str | None) -> None:
        c = self._conn()
        c.execute(self._q("INSERT INTO pulse_incidents (monitor_id, started, resolved, error) VALUES (?, ?, NULL, ?)"),
                  (monitor_id, started, error))
        c.commit()

    def resolve_incident(self, monitor_id: str, resolved: float) -> None:
        c = self._conn()
        c.execute(self._q("UPDATE pulse_incidents SET resolved = ? WHERE monitor_id = ? AND resolved IS NULL"),
                  (resolved, monitor_id))
        c.commit()

    def prune(self, before: float) -> None:
        c = self._conn()
        c.execute(self._q("DELETE FROM pulse_checks WHERE ts < ?"), (before,))
        c.execute(self._q("DELETE FROM pulse_incidents WHERE resolved IS NOT NULL AND resolved < ?"), (before,))
        c.commit()

    # reads ---------------------------------------------------------------------------------
    def uptime(self, now: float, monitor_ids: list[str] | None = None) -> dict[str, dict[str, float | None]]:
        """Share of successful checks per window ending at `now` (maintenance excluded);
        None when there was no check in the window."""
        cols = []
        params: list[Any] = []
        for w in WINDOWS.values():
            cols.append("SUM(CASE WHEN ts > ? AND ok THEN 1 ELSE 0 END), SUM(CASE WHEN ts > ? THEN 1 ELSE 0 END)")
            params += [now - w, now - w]
        sql = (f"SELECT monitor_id, {', '.join(cols)} FROM pulse_checks "
               "WHERE ts > ? AND ts <= ? AND NOT maintenance")
        params += [now - max(WINDOWS.values()), now]
        if monitor_ids is not None:
            if not monitor_ids:
                return {}
            sql += f" AND monitor_id IN ({', '.join('?' for _ in monitor_ids)})"
            params += monitor_ids
        sql += " GROUP BY monitor_id"
        out: dict[str, dict[str, float | None]] = {}
        for row in self._fetch(sql, params):
            vals = {}
            for i, name in enumerate(WINDOWS):
                up, total = row[1 + 2 * i] or 0, row[2 + 2 * i] or 0
                vals[name] = (up / total) if total else None
            out[row[0]] = vals
        return out

    def series(self, now: float, span: float = 86400.0, buckets: int = 48,
               monitor_ids: list[str] | None = None) -> dict[str, list[tuple[float, float | None, float]]]:
        """Per monitor and time bucket over [now - span, now]: (bucket start, mean response
        time in ms of successful checks, share of successful checks)."""
        start = now - span
        width = span / buckets
        sql = (f"SELECT monitor_id, {self.bucket_expr} AS b, "
               "AVG(CASE WHEN ok THEN rtt_ms END), AVG(CASE WHEN ok THEN 1.0 ELSE 0.0 END) "
               "FROM pulse_checks WHERE ts > ? AND ts <= ?")
        params: list[Any] = [start, width, start, now]
        if monitor_ids is not None:
            if not monitor_ids:
                return {}
            sql += f" AND monitor_id IN ({', '.join('?' for _ in monitor_ids)})"
            params += monitor_ids
        sql += " GROUP BY monitor_id, b ORDER BY monitor_id, b"
        out: dict[str, list[tuple[float, float | None, float]]] = {}
        for mid, b, rtt, okr in self._fetch(sql, params):
            b = min(int(b), buckets - 1)
            out.setdefault(mid, []).append((start + b * width, None if rtt is None else float(rtt), float(okr)))
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

    def recent(self, monitor_id: str, limit: int = 50, since: float | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM pulse_checks WHERE monitor_id = ?"
        params: list[Any] = [monitor_id]
        if since is not None:
            sql += " AND ts > ?"
            params.append(since)
        sql += " ORDER BY ts DESC LIMIT ?"
        params.append(int(limit))
        return [dict(zip(_COLUMNS, (r[0], r[1], bool(r[2]), *r[3:7], bool(r[7]))))
                for r in self._fetch(sql, params)]

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

    def write_checks(self, results: list[CheckResult]) -> None:
        if not results:
            return
        c = self._conn()
        with c:  # one transaction per batch
            c.executemany(f"INSERT INTO pulse_checks ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                          [_row(r) for r in results])


class PostgresHistory(HistoryStore):
    placeholder = "%s"
    bucket_expr = "FLOOR((ts - %s) / %s)"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url)
        except psycopg.OperationalError as exc:
            raise TransientError(f"cannot connect to the pulse database: {exc}".strip(),
                                 hint="check pulse.database_url (SHIPYARD_PULSE__DATABASE_URL) and that "
                                      "PostgreSQL is running") from None

    def _q(self, sql: str) -> str:
        # bucket_expr is already in %s form; only convert the generic '?' placeholders.
        return sql.replace("?", "%s")

    def _end_read(self, conn: Any) -> None:
        # psycopg opens a transaction on the first statement; end it so a long-lived read
        # connection does not hold a snapshot (and block VACUUM) forever.
        conn.rollback()

    def write_checks(self, results: list[CheckResult]) -> None:
        if not results:
            return
        c = self._conn()
        with c.cursor() as cur:
            # COPY is PostgreSQL's bulk path (https://www.postgresql.org/docs/current/sql-copy.html).
            with cur.copy(f"COPY pulse_checks ({', '.join(_COLUMNS)}) FROM STDIN") as cp:
                for r in results:
                    cp.write_row(_row(r))
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
