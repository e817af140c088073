"""PostgreSQL (and Redshift, which speaks its protocol): psycopg 3, one transaction per file.

Driver errors are mapped here, by class and SQLSTATE (never message text), into terminal
InputErrors (a bad value, a constraint: the file is at fault) and TransientErrors (the
connection, a deadlock, a lock timeout, the server shutting down: try again).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import psycopg
from psycopg.conninfo import make_conninfo

from shipyard.errors import InputError, ShipyardError, TransientError
from shipyard.propagator.dialects import Dialect
from shipyard.propagator.engines.base import RunResult, action, crash_point, require_rows, where_from_text
from shipyard.propagator.ledger import LEDGER_TABLE, LedgerEntry, fill, lookup_sql
from shipyard.propagator.plan import Plan, Step, TableInfo
from shipyard.propagator.sources import Source
from shipyard.redact import redact

# SQLSTATE classes / codes that mean "retry": connection exceptions (08), serialization failure
# and deadlock (40001, 40P01), insufficient resources (53), operator intervention (57), lock not
# available (55P03). https://www.postgresql.org/docs/current/errcodes-appendix.html
_TRANSIENT_CLASSES = ("08", "53", "57", "58")
_TRANSIENT_CODES = {"40001", "40P01", "55P03", "55006"}
_CONFLICT = {"40001", "40P01"}  # rolled back by the server, which asks for the transaction again
_CARDINALITY = "21000"  # ON CONFLICT DO UPDATE command cannot affect row a second time

_setup_lock = threading.Lock()


def map_pg_error(exc: BaseException, what: str, data: Any = None) -> ShipyardError:
    state = getattr(exc, "sqlstate", None) or ""
    diag = getattr(exc, "diag", None)
    primary = (diag.message_primary if diag is not None else None) or str(exc).split("\n")[0]
    if state.startswith(_TRANSIENT_CLASSES) or state in _TRANSIENT_CODES or (
            not state and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))):
        return TransientError(f"{what}: {redact(primary)}; will retry", conflict=state in _CONFLICT or None)
    where = where_from_text(diag.context if diag is not None else None, data)
    if where is None and diag is not None and diag.column_name:
        where = {"column_name": diag.column_name}
    hint = {
        "22": "fix the value at that line and column so it fits the column's type",
        "23": "the row breaks a constraint (NOT NULL, unique, check): fix or remove it",
        "42": "the file or spec names something the database does not accept",
    }.get(state[:2], "see the database's message")
    return InputError(f"{what}: {redact(primary)}", hint=hint, where=where, sqlstate=state or None)


class PostgresEngine:
    """`<db>` is a database on the server the destination URL points at."""

    def __init__(self, url: str, dialect: Dialect, *, name: str = "postgres",
                 credentials: Callable[[], tuple[str, str]] | None = None) -> None:
        self.url = url
        self.dialect = dialect
        self.name = name
        # Redshift IAM: (user, temporary password), fetched and refreshed by redshift_auth.
        self.credentials = credentials
        self._ready: set[str] = set()

    def _conninfo(self, database: str) -> str:
        # Postgres: the key's database replaces the URL's. Redshift: `<db>` is a schema, the
        # URL's database stays.
        extra: dict[str, str] = {}
        if self.credentials is not None:
            extra["user"], extra["password"] = self.credentials()
        if self.dialect.database_is_schema:
            return make_conninfo(self.url, **extra)
        return make_conninfo(self.url, dbname=database, **extra)

    def connect(self, database: str) -> psycopg.Connection:
        try:
            return psycopg.connect(self._conninfo(database), connect_timeout=10)
        except psycopg.OperationalError as exc:
            if not self.dialect.database_is_schema and not self._database_exists(database):
                raise InputError(
                    f"database {database!r} does not exist on destination {self.name!r}",
                    hint="fix database= in the key, or ask a DBA to create the database "
                    "(the propagator does not create databases)",
                ) from None
            # Refused, unreachable, a wrong password or role: the destination's settings, not the
            # file. The file stays pending and is retried once the destination is fixed.
            raise TransientError(f"connecting to destination {self.name!r}: {redact(_first_line(exc))}; will retry",
                                 hint="check the destination's URL and credentials") from None

    def _database_exists(self, database: str) -> bool:
        try:
            with psycopg.connect(make_conninfo(self.url), connect_timeout=10, autocommit=True) as c:
                return c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None
        except psycopg.Error:
            return True  # cannot tell: let the original error (retryable) stand

    def _schema(self, database: str) -> str:
        return database if self.dialect.database_is_schema else "public"

    def describe(self, database: str, table: str) -> TableInfo | None:
        schema = self._schema(database)
        try:
            with self.connect(database) as conn:
                rows = conn.execute(
                    "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                    "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p') "
                    "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (schema, table)).fetchall()
                if not rows:
                    return None
                pk = conn.execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) "
                    "WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary "
                    "ORDER BY array_position(i.indkey::int2[], a.attnum)", (schema, table)).fetchall()
        except psycopg.Error as exc:
            raise map_pg_error(exc, f"reading {database}.{table}") from None
        return TableInfo({r[0]: r[1] for r in rows}, [r[0] for r in pk])

    def ledger_entry(self, database: str, key_hash: str) -> LedgerEntry | None:
        rows = self.read_ledger(database, lookup_sql(self.dialect, database), (key_hash,))
        return LedgerEntry.from_record(rows[0]) if rows else None

    def read_ledger(self, database: str, sql: str, params: tuple[Any, ...] = (),
                    table: str = LEDGER_TABLE) -> list[dict[str, Any]]:
        d = self.dialect
        try:
            with self.connect(database) as conn:
                exists = conn.execute("SELECT to_regclass(%s)", (d.table_ref(database, table),)).fetchone()
                if not exists or exists[0] is None:
                    return []
                cur = conn.execute(sql, params)
                names = [c.name for c in cur.description or []]
                return [dict(zip(names, r)) for r in cur.fetchall()]
        except psycopg.Error as exc:
            raise map_pg_error(exc, f"reading the ledger of {database}") from None

    def _setup(self, conn: psycopg.Connection, plan: Plan) -> None:
        if plan.database in self._ready or not plan.setup:
            return
        with _setup_lock:
            # Two processes creating the ledger at once would collide on the catalog: a
            # transaction-level advisory lock serialises the idempotent setup.
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(7450305523)")
                for step in plan.setup:
                    conn.execute(step.sql)
            self._ready.add(plan.database)

    def run(self, plan: Plan, source: Source | None) -> RunResult:
        data = source.data if source else None
        started = time.perf_counter()
        with self.connect(plan.database) as conn:
            try:
                self._setup(conn, plan)
                rows, rejects = 0, []
                with conn.transaction():
                    with conn.cursor() as cur:
                        for step in plan.steps:
                            if step.kind == "check":
                                if cur.execute(step.sql, step.params).fetchone() is not None:
                                    raise _AlreadyDone()
                            elif step.kind == "copy" and self.dialect.bulk == "copy_stdin":
                                assert source is not None
                                with cur.copy(step.sql) as cp:
                                    for chunk in source.csv_chunks():
                                        cp.write(chunk)
                                rows += max(cur.rowcount, 0)
                            elif step.kind == "rejects":  # Redshift: the rows its COPY set aside
                                rejects = [tuple(r) for r in cur.execute(step.sql, step.params or None).fetchall()]
                            elif step.kind == "ledger":
                                require_rows(plan, rows)
                                cur.execute(step.sql, fill(step.params, rows, time.perf_counter() - started))
                            elif step.fallback:
                                self._with_fallback(conn, cur, step)
                            else:
                                cur.execute(step.sql, step.params or None)
                                if step.counts:
                                    rows += max(cur.rowcount, 0)
                    crash_point("before_commit")
                crash_point("after_commit")
                return RunResult(rows, rejects=rejects)
            except _AlreadyDone:
                return RunResult(0, duplicate=True)
            except psycopg.Error as exc:
                raise map_pg_error(exc, action(plan), data) from None

    @staticmethod
    def _with_fallback(conn: psycopg.Connection, cur: psycopg.Cursor, step: Step) -> None:
        try:
            with conn.transaction():  # a savepoint inside the outer transaction
                cur.execute(step.sql, step.params or None)
        except psycopg.Error as exc:
            if getattr(exc, "sqlstate", None) != _CARDINALITY:
                raise
            for f in step.fallback:
                cur.execute(f.sql, f.params or None)

    def close(self) -> None:
        pass


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n")[0]


class _AlreadyDone(Exception):
    pass

