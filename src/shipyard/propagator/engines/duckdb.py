"""DuckDB: the warehouse is one file (default ./warehouse.duckdb); `<db>` is a schema in it.

A DuckDB file has one writing process (https://duckdb.org/docs/stable/connect/concurrency);
inside it each file runs on its own cursor (its own transaction) and a lock per table keeps
one writer per table, while different tables load in parallel.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import duckdb

from shipyard.propagator.dialects import Dialect
from shipyard.errors import InputError
from shipyard.propagator.duckdb_reader import map_duckdb_error
from shipyard.propagator.screen import with_line
from shipyard.propagator.engines.base import RunResult, action, crash_point, require_rows
from shipyard.propagator.ledger import LEDGER_TABLE, LedgerEntry, fill, lookup_sql
from shipyard.propagator.plan import Plan, TableInfo
from shipyard.propagator.sources import Source

_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def _table_lock(path: str, name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((path, name), threading.Lock())


class DuckDBEngine:
    def __init__(self, path: str | Path, dialect: Dialect, *, name: str = "duckdb") -> None:
        self.path = str(Path(path).expanduser().resolve())
        self.dialect = dialect
        self.name = name
        self._con: duckdb.DuckDBPyConnection | None = None
        self._open_lock = threading.Lock()

    def _root(self) -> duckdb.DuckDBPyConnection:
        with self._open_lock:
            if self._con is None:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                try:
                    self._con = duckdb.connect(self.path)
                except duckdb.Error as exc:
                    raise map_duckdb_error(exc, None, f"opening {self.path}", opening=True) from None
            return self._con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._root().cursor()

    def describe(self, database: str, table: str) -> TableInfo | None:
        cur = self.cursor()
        try:
            rows = cur.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? "
                "ORDER BY ordinal_position", [database, table]).fetchall()
            if not rows:
                return None
            pk = cur.execute(
                "SELECT constraint_column_names FROM duckdb_constraints() WHERE database_name = current_database() "
                "AND schema_name = ? AND table_name = ? AND constraint_type = 'PRIMARY KEY'", [database, table]).fetchone()
            idx = cur.execute(
                "SELECT index_name, expressions, sql FROM duckdb_indexes() WHERE database_name = current_database() "
                "AND schema_name = ? AND table_name = ?", [database, table]).fetchall()
        except duckdb.Error as exc:
            raise map_duckdb_error(exc, None, f"reading {database}.{table}") from None
        finally:
            cur.close()
        indexes = {name: ([str(e).strip('"').lower() for e in _exprs(exprs)], sql) for name, exprs, sql in idx}
        return TableInfo({r[0]: r[1] for r in rows}, list(pk[0]) if pk else [], indexes)

    def ledger_entry(self, database: str, key_hash: str) -> LedgerEntry | None:
        rows = self.read_ledger(database, lookup_sql(self.dialect, database), (key_hash,))
        return LedgerEntry.from_record(rows[0]) if rows else None

    def read_ledger(self, database: str, sql: str, params: tuple[Any, ...] = (),
                    table: str = LEDGER_TABLE) -> list[dict[str, Any]]:
        cur = self.cursor()
        try:
            exists = cur.execute("SELECT 1 FROM information_schema.tables WHERE table_catalog = current_database() "
                                 "AND table_schema = ? AND table_name = ?", [database, table]).fetchone()
            if not exists:
                return []
            rel = cur.execute(sql, list(params))
            names = [c[0] for c in rel.description]
            return [dict(zip(names, r)) for r in rel.fetchall()]
        except duckdb.Error as exc:
            raise map_duckdb_error(exc, None, "reading the ledger") from None
        finally:
            cur.close()

    def run(self, plan: Plan, source: Source | None) -> RunResult:
        data = source.data if source else None
        started = time.perf_counter()
        cur = self.cursor()
        try:
            with _table_lock(self.path, f"{plan.database}.{plan.table}"):
                try:
                    with _table_lock(self.path, "__setup__"):
                        for step in plan.setup:
                            cur.execute(step.sql)
                    cur.execute("BEGIN TRANSACTION")
                    rows = 0
                    for step in plan.steps:
                        if step.kind == "check":
                            if cur.execute(step.sql, list(step.params)).fetchone() is not None:
                                cur.execute("ROLLBACK")
                                return RunResult(0, duplicate=True)
                        elif step.kind == "ledger":
                            require_rows(plan, rows)
                            cur.execute(step.sql, list(fill(step.params, rows, time.perf_counter() - started)))
                        else:
                            res = cur.execute(step.sql, list(step.params) if step.params else None)
                            if step.counts:
                                got = res.fetchone()
                                rows += int(got[0]) if got else 0
                    crash_point("before_commit")
                    cur.execute("COMMIT")
                except BaseException as exc:
                    try:
                        cur.execute("ROLLBACK")
                    except duckdb.Error:
                        pass
                    if isinstance(exc, duckdb.Error):
                        err = map_duckdb_error(exc, data, action(plan))
                        if isinstance(err, InputError) and source is not None and data is not None:
                            err = with_line(err, source.local_file(), source.local_data)
                        raise err from None
                    raise
            crash_point("after_commit")
            return RunResult(rows)
        finally:
            cur.close()

    def close(self) -> None:
        with self._open_lock:
            if self._con is not None:
                self._con.close()
                self._con = None


def _exprs(exprs: Any) -> list[str]:
    # duckdb_indexes().expressions is a list of column expressions (older versions: a string).
    if isinstance(exprs, str):
        return [e.strip() for e in exprs.strip("[]").split(",") if e.strip()]
    return list(exprs or [])

