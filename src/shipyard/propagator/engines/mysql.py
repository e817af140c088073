"""MySQL / MariaDB: pymysql, LOAD DATA LOCAL INFILE, GET_LOCK, ledger in the same transaction.

`<db>` is the database (the URL's is replaced). Rows are checked strictly: the session runs in
STRICT_ALL_TABLES and any warning LOAD DATA raises (a short row, a truncated value) fails
the file with its line, instead of MySQL's default of loading a guess.
DDL commits implicitly in MySQL (https://dev.mysql.com/doc/refman/8.0/en/implicit-commit.html):
a create or an ALTER is atomic on its own, and its ledger row follows in the next transaction.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql

from shipyard.errors import ConfigError, InputError, ShipyardError, TransientError
from shipyard.propagator.datafile import DataFile
from shipyard.propagator.dialects import Dialect
from shipyard.propagator.engines.base import RunResult, action, crash_point, require_rows, to_file_position
from shipyard.propagator.ledger import LEDGER_TABLE, LedgerEntry, fill, lookup_sql
from shipyard.propagator.plan import Plan, TableInfo
from shipyard.propagator.sources import Source
from shipyard.redact import redact

# Server error codes that mean "retry" (https://mariadb.com/kb/en/mariadb-error-codes/):
# lock wait timeout, deadlock, too many connections, server shutdown, query interrupted;
# client codes 2000-2999 (cannot connect, server gone away, lost connection).
_TRANSIENT = {1205, 1213, 1040, 1053, 1317, 1927, 3024}
_DEADLOCK = 1213  # the server rolled the transaction back and asks for it to be run again
_UNKNOWN_DB = 1049
_ROW = re.compile(r"\b(?:at row|Row) (\d+)", re.IGNORECASE)
_COLUMN = re.compile(r"for column [`']?(?:[^`'.]*[`']?\.[`']?)*([A-Za-z_][A-Za-z0-9_]*)[`']?")

_ready_lock = threading.Lock()
MAX_IDLE = 8  # idle sessions kept per database (propagator.workers is 4 by default)


def _where(text: str, data: DataFile | None) -> dict[str, Any] | None:
    m = _ROW.search(text)
    if not m:
        return None
    # MySQL counts data rows of the CSV it reads (its header is line 1); a CSV written without a
    # header (input_options.header false) has data on line 1.
    headless = data is not None and data.format == "csv" and not data.options.header
    where: dict[str, Any] = to_file_position(int(m.group(1)) + (0 if headless else 1), data)
    c = _COLUMN.search(text)
    if c:
        where["column_name"] = c.group(1)
        if data is not None and data.column_number(c.group(1)):
            where["column"] = data.column_number(c.group(1))
    return where


def map_mysql_error(exc: BaseException, what: str, data: DataFile | None = None) -> ShipyardError:
    code = exc.args[0] if getattr(exc, "args", None) and isinstance(exc.args[0], int) else 0
    text = str(exc.args[1]) if len(getattr(exc, "args", ())) > 1 else str(exc)
    if code in _TRANSIENT or 2000 <= code < 3000 or isinstance(exc, (ConnectionError, TimeoutError)):
        return TransientError(f"{what}: {redact(text)}; will retry", conflict=code == _DEADLOCK or None)
    hint = {1062: "the file repeats a key that is already in the table (use input/update to upsert)",
            1048: "a NOT NULL column got no value: fill it in the file",
            1054: "the file or spec names a column the table does not have"}.get(
        code, "fix the value at that line and column so it fits the column's type" if code in (1265, 1292, 1366, 1264)
        else "see the database's message")
    return InputError(f"{what}: {redact(text)}", hint=hint, where=_where(text, data), mysql_error=code or None)


class MySQLEngine:
    def __init__(self, url: str, dialect: Dialect, *, name: str = "mysql") -> None:
        u = urlsplit(url)
        if u.scheme not in ("mysql", "mariadb", "mysql+pymysql"):
            raise ConfigError(f"destination {name!r}: {u.scheme}:// is not a MySQL URL",
                              hint="use mysql://user:password@host:3306/database")
        self.params = {"host": u.hostname or "127.0.0.1", "port": u.port or 3306,
                       "user": unquote(u.username or "root"), "password": unquote(u.password or "")}
        self.dialect = dialect
        self.name = name
        self._ready: set[str] = set()
        # Idle sessions per database, each used by one caller at a time: a file takes four (ledger,
        # table, options, load), and opening one costs ~25 ms (PyMySQL builds a TLS context for
        # each). At most MAX_IDLE are kept per database; the rest are closed when given back.
        self._idle: dict[str, list[pymysql.connections.Connection]] = {}
        self._idle_lock = threading.Lock()

    def connect(self, database: str) -> pymysql.connections.Connection:
        """A session on `database`: an idle one that still answers, else a new one. Give it back
        with `release`."""
        with self._idle_lock:
            idle = self._idle.get(database)
            conn = idle.pop() if idle else None
        if conn is not None:
            try:
                conn.ping(reconnect=False)
                return conn
            except Exception:  # noqa: BLE001 - a session cut while idle fails in PyMySQL's own ways
                _close(conn)
        return self._open(database)

    def release(self, conn: pymysql.connections.Connection, database: str, healthy: bool) -> None:
        """Keep a session that ended cleanly (its transaction rolled back: no snapshot, no lock is
        carried to the next use); close one that failed."""
        if healthy:
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 - as above: not kept
                healthy = False
        if healthy:
            with self._idle_lock:
                idle = self._idle.setdefault(database, [])
                if len(idle) < MAX_IDLE:
                    idle.append(conn)
                    return
        _close(conn)

    def _open(self, database: str) -> pymysql.connections.Connection:
        try:
            conn = pymysql.connect(**self.params, database=database, autocommit=False, charset="utf8mb4",
                                   local_infile=True, connect_timeout=10)
        except pymysql.err.MySQLError as exc:
            if exc.args and exc.args[0] == _UNKNOWN_DB:
                raise InputError(f"database {database!r} does not exist on destination {self.name!r}",
                                 hint="fix database= in the key, or ask a DBA to create the database "
                                 "(the propagator does not create databases)") from None
            # Anything else at connect time (refused, access denied, too many connections) is about
            # the destination, not the file: the file stays and is retried once it is fixed.
            raise TransientError(f"connecting to destination {self.name!r}: {redact(exc)}; will retry",
                                 hint="check the destination's URL and credentials") from None
        try:
            with conn.cursor() as cur:
                # Strict: a bad value is an error, never a silent 0 or truncation.
                cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,ONLY_FULL_GROUP_BY'")
        except pymysql.err.MySQLError as exc:  # the connection lost right after it opened
            conn.close()
            raise map_mysql_error(exc, f"connecting to destination {self.name!r}") from None
        return conn

    def describe(self, database: str, table: str) -> TableInfo | None:
        conn, ok = self.connect(database), True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT column_name, column_type FROM information_schema.columns WHERE table_schema = %s "
                            "AND table_name = %s ORDER BY ordinal_position", (database, table))
                cols = cur.fetchall()
                if not cols:
                    return None
                cur.execute("SELECT column_name FROM information_schema.statistics WHERE table_schema = %s "
                            "AND table_name = %s AND index_name = 'PRIMARY' ORDER BY seq_in_index", (database, table))
                pk = [r[0] for r in cur.fetchall()]
        except pymysql.err.MySQLError as exc:
            ok = False
            raise map_mysql_error(exc, f"reading {database}.{table}") from None
        except BaseException:
            ok = False
            raise
        finally:
            self.release(conn, database, ok)
        return TableInfo({str(r[0]).lower(): str(r[1]) for r in cols}, [str(c).lower() for c in pk])

    def ledger_entry(self, database: str, key_hash: str) -> LedgerEntry | None:
        rows = self.read_ledger(database, lookup_sql(self.dialect, database), (key_hash,))
        return LedgerEntry.from_record(rows[0]) if rows else None

    def read_ledger(self, database: str, sql: str, params: tuple[Any, ...] = (),
                    table: str = LEDGER_TABLE) -> list[dict[str, Any]]:
        conn, ok = self.connect(database), True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                            (database, table))
                if cur.fetchone() is None:
                    return []
                cur.execute(sql, params)
                names = [c[0] for c in cur.description or []]
                return [dict(zip(names, r)) for r in cur.fetchall()]
        except pymysql.err.MySQLError as exc:
            ok = False
            raise map_mysql_error(exc, f"reading the ledger of {database}") from None
        except BaseException:
            ok = False
            raise
        finally:
            self.release(conn, database, ok)

    def run(self, plan: Plan, source: Source | None) -> RunResult:
        data = source.data if source else None
        started = time.perf_counter()
        conn, ok, released = self.connect(plan.database), False, True
        try:
            cur = conn.cursor()
            if plan.database not in self._ready:
                with _ready_lock:
                    for step in plan.setup:
                        cur.execute(step.sql)
                    conn.commit()
                    self._ready.add(plan.database)
            rows = 0
            try:
                for step in plan.steps:
                    if step.finally_:
                        continue
                    if step.kind == "lock":
                        cur.execute(step.sql, step.params)
                        got = cur.fetchone()
                        if not got or got[0] != 1:
                            raise TransientError(f"{plan.database}.{plan.table} is being written by another loader; "
                                                 "will retry")
                    elif step.kind == "check":
                        cur.execute(step.sql, step.params)
                        if cur.fetchone() is not None:
                            conn.rollback()
                            return RunResult(0, duplicate=True)
                    elif step.kind == "ledger":
                        require_rows(plan, rows)
                        cur.execute(step.sql, fill(step.params, rows, time.perf_counter() - started))
                    elif step.kind == "copy" and source is not None:
                        # DuckDB's strict pass writes the file while LOAD DATA reads it: its
                        # verdict on the file comes first (a short row it refused loads as a guess).
                        try:
                            n = cur.execute(step.sql, step.params or None)
                        except BaseException as exc:
                            source.end_pipe(loader_failed=True)
                            if isinstance(exc, AttributeError) and not conn.open:
                                # PyMySQL, cut off mid LOAD DATA, trips over its own closed socket
                                # while answering the server: the connection was lost.
                                raise TransientError(f"{action(plan)}: the connection was lost during "
                                                     "LOAD DATA; will retry") from None
                            raise
                        source.end_pipe()
                        self._no_warnings(cur, plan, data)
                        rows += max(int(n or 0), 0)
                    else:
                        n = cur.execute(step.sql, step.params or None)
                        if step.kind == "copy":
                            self._no_warnings(cur, plan, data)
                        if step.counts:
                            rows += max(int(n or 0), 0)
                crash_point("before_commit")
                conn.commit()
            except BaseException:
                try:
                    conn.rollback()
                except pymysql.err.MySQLError:
                    pass
                raise
            finally:
                for step in plan.steps:
                    if step.finally_:
                        try:
                            cur.execute(step.sql, step.params)
                        except pymysql.err.MySQLError:
                            released = False  # the lock ends with the connection, which is closed
            crash_point("after_commit")
            ok = released
            return RunResult(rows)
        except pymysql.err.MySQLError as exc:
            raise map_mysql_error(exc, action(plan), data) from None
        finally:
            # A session whose plan failed is closed: whatever it held (a temp table, a lock) goes.
            self.release(conn, plan.database, ok)

    @staticmethod
    def _no_warnings(cur: Any, plan: Plan, data: DataFile | None) -> None:
        """LOAD DATA reports short rows, extra fields and truncation as warnings: fail on the first."""
        cur.execute("SHOW WARNINGS LIMIT 1")
        w = cur.fetchone()
        if w:
            text = str(w[2])
            raise InputError(f"{action(plan)}: {text}",
                             hint="every line needs the header's number of fields, '\"' around values with commas "
                             "or line breaks, and values that fit their column",
                             where=_where(text, data), mysql_error=int(w[1]))

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle = [c for conns in self._idle.values() for c in conns], {}
        for conn in idle:
            _close(conn)


def _close(conn: pymysql.connections.Connection) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - already gone
        pass

