"""The findings ledger: one row per (policy name, resource ARN), in SQLite (a file, the default)
or PostgreSQL (`custodian.database_url = "postgresql://..."`).

A run's changes are written in one transaction after the run, so a crash half-way leaves the
ledger as it was and the next run reports the same changes again (never half of them).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from dataclasses import astuple, fields
from pathlib import Path
from typing import Any, Iterable, Iterator

from shipyard.custodian.decide import Finding
from shipyard.errors import ConfigError, TransientError
from shipyard.settings import get_settings

_COLUMNS = [f.name for f in fields(Finding)]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS custodian_findings (
        policy TEXT NOT NULL,
        arn TEXT NOT NULL,
        account_id TEXT NOT NULL,
        region TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        severity TEXT NOT NULL,
        state TEXT NOT NULL,
        first_seen DOUBLE PRECISION NOT NULL,
        last_seen DOUBLE PRECISION NOT NULL,
        resolved_at DOUBLE PRECISION,
        hub_sent DOUBLE PRECISION,
        PRIMARY KEY (policy, arn)
    )""",
    "CREATE INDEX IF NOT EXISTS custodian_findings_state ON custodian_findings (state)",
    # One run at a time: two overlapping runs would both see a finding as new and both notify.
    """CREATE TABLE IF NOT EXISTS custodian_lock (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS custodian_runs (
        run_id TEXT PRIMARY KEY,
        started DOUBLE PRECISION NOT NULL,
        finished DOUBLE PRECISION NOT NULL,
        bundle TEXT NOT NULL,
        dryrun BOOLEAN NOT NULL,
        summary TEXT NOT NULL
    )""",
]

_UPSERT = (
    f"INSERT INTO custodian_findings ({', '.join(_COLUMNS)}) VALUES ({', '.join(['?'] * len(_COLUMNS))}) "
    "ON CONFLICT (policy, arn) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c not in ("policy", "arn"))
)


class Ledger:
    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        try:
            if self.postgres:
                import psycopg  # only for a PostgreSQL ledger (start-up cost)

                self._conn: Any = psycopg.connect(url)
            else:
                path = Path(url.removeprefix("sqlite:///"))
                path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(path)
        except Exception as exc:  # driver errors differ by engine; both mean "cannot open"
            raise TransientError(f"cannot open the findings ledger ({type(exc).__name__})",
                                 hint="check custodian.database_url and that the database "
                                 "answers") from None
        with self._tx() as cur:
            for stmt in _SCHEMA:
                cur.execute(stmt)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        cur = self._conn.cursor()
        try:
            yield cur
            self._conn.commit()
        except BaseException:
            self._conn.rollback()
            raise
        finally:
            cur.close()

    def load(self, *, open_only: bool = False) -> dict[tuple[str, str], Finding]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM custodian_findings"
        if open_only:
            sql += " WHERE state = 'open'"
        with self._tx() as cur:
            cur.execute(sql + " ORDER BY policy, arn")
            rows = cur.fetchall()
        return {(r[0], r[1]): Finding(*r) for r in rows}

    def save(self, rows: Iterable[Finding]) -> None:
        data = [astuple(r) for r in rows]
        if not data:
            return
        with self._tx() as cur:
            cur.executemany(self._sql(_UPSERT), data)

    def acquire(self, owner: str, now: float, ttl: float) -> bool:
        """Take the run lock for `ttl` seconds; False if another live run holds it. A crashed
        run's lock expires, so it never blocks the schedule for good."""
        with self._tx() as cur:
            cur.execute(self._sql(
                "INSERT INTO custodian_lock VALUES ('run', ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET owner = excluded.owner, expires = excluded.expires "
                "WHERE custodian_lock.expires < ? OR custodian_lock.owner = excluded.owner"),
                (owner, now + ttl, now))
            return cur.rowcount == 1

    def release(self, owner: str) -> None:
        with self._tx() as cur:
            cur.execute(self._sql("DELETE FROM custodian_lock WHERE owner = ?"), (owner,))

    def record_run(self, run_id: str, started: float, finished: float, bundle: str,
                   dryrun: bool, summary: dict[str, Any]) -> None:
        with self._tx() as cur:
            cur.execute(self._sql("INSERT INTO custodian_runs VALUES (?, ?, ?, ?, ?, ?)"),
                        (run_id, started, finished, bundle, dryrun, json.dumps(summary)))

    def runs(self) -> list[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute("SELECT run_id, started, finished, bundle, dryrun, summary "
                        "FROM custodian_runs ORDER BY started")
            return [{"run_id": r[0], "started": r[1], "finished": r[2], "bundle": r[3],
                     "dryrun": bool(r[4]), "summary": json.loads(r[5])} for r in cur.fetchall()]

    def close(self) -> None:
        self._conn.close()


def open_ledger(url: str | None = None) -> Ledger:
    if url is None:
        url = get_settings().custodian.database_url
    if "://" in url and not url.startswith(("postgresql://", "postgres://", "sqlite:///")):
        raise ConfigError(f"unsupported ledger URL scheme in {url.split('://')[0]}://",
                          hint="use a SQLite file path or a postgresql:// URL")
    return Ledger(url)
