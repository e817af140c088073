"""What a plan is (steps, the table as it stands) and the steps every plan has.

A `Plan` has `setup` (idempotent statements run in their own short transaction: the schema and
the ledger table) and `steps` (one transaction: the table lock, the ledger check, the change
itself, the ledger row). plan/schema.py and plan/data.py fill in the change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from shipyard.errors import did_you_mean
from shipyard.propagator.dialects import Dialect
from shipyard.propagator.layout import ParsedKey
from shipyard.propagator.specs import InputOptions
from shipyard.propagator.ledger import (
    LEDGER_TABLE,
    OPTIONS_TABLE,
    Marker,
    ddl,
    key_hash,
    lookup_sql,
    migrate_sql,
    options_ddl,
    record_params,
    record_sql,
)

StepKind = Literal["sql", "lock", "check", "copy", "ledger", "rejects"]


@dataclass(frozen=True)
class Step:
    sql: str
    kind: StepKind = "sql"
    params: tuple[Any, ...] = ()
    # This statement's row count is the number of rows the file brought.
    counts: bool = False
    # Run these instead when the statement fails because the file repeats a key (SQLSTATE 21000).
    fallback: tuple["Step", ...] = ()
    # Statements that must run after the transaction, whatever happened (MySQL RELEASE_LOCK).
    finally_: bool = False


@dataclass
class TableInfo:
    columns: dict[str, str]  # name -> type, in table order
    primary_key: list[str] = field(default_factory=list)
    # Secondary indexes: name -> (columns, CREATE INDEX statement); filled where the dialect
    # needs them (DuckDB cannot drop a column while an index is on its table).
    indexes: dict[str, tuple[list[str], str]] = field(default_factory=dict)
    # How its CSV files are written (stored by the create spec or an options update), if set.
    options: InputOptions | None = None


@dataclass
class Plan:
    key: str
    operation: str
    dialect: Dialect
    database: str
    table: str
    key_hash: str
    setup: list[Step] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    # What is streamed into a `copy` step (an object key), for display.
    source: str | None = None

    def statements(self) -> list[Step]:
        return [*self.setup, *self.steps]

    def render(self) -> str:
        d = self.dialect

        def one(step: Step) -> str:
            sql = step.sql
            for p in step.params:
                shown = d.literal(p) if not isinstance(p, Marker) else f"<{p.name}>"
                sql = sql.replace(d.param, shown, 1)
            if step.kind == "copy" and self.source:
                sql += f"  -- streamed from {self.source}"
            if step.fallback:
                sql += ";\n-- if the file repeats a key (SQLSTATE 21000), instead:\n" + ";\n".join(
                    "-- " + one(f) for f in step.fallback)
            return sql

        out = [f"-- {self.operation} {self.key} on {d.name}"]
        if self.setup:
            out += ["-- setup (idempotent, own transaction)", *[one(s) + ";" for s in self.setup]]
        out.append("BEGIN;")
        out += [one(s) + ";" for s in self.steps if not s.finally_]
        out.append("COMMIT;")
        out += [one(s) + ";" for s in self.steps if s.finally_]
        return "\n".join(out)


def lock_id(name: str) -> int:
    """A stable signed 64-bit id for pg_advisory_xact_lock."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


# -- what every plan has ---------------------------------------------------------------------------

def setup_steps(d: Dialect, pk: ParsedKey) -> list[Step]:
    steps = []
    if d.database_is_schema:
        steps.append(Step(f"CREATE SCHEMA IF NOT EXISTS {d.q(pk.database)}"))
    steps.append(Step(ddl(d, pk.database)))
    steps.append(Step(options_ddl(d, pk.database)))
    if (migrate := migrate_sql(d, pk.database)) is not None:
        steps.append(Step(migrate))
    return steps


def lock_steps(d: Dialect, pk: ParsedKey) -> list[Step]:
    if d.lock == "advisory_xact":
        # Held until commit or rollback: one writer per table, other tables untouched.
        return [Step(f"SELECT pg_advisory_xact_lock({d.param})", "lock", (lock_id("shipyard:" + pk.lock_name),))]
    if d.lock == "lock_table":
        # A create has no table to lock yet: the ledger's lock serialises creates.
        tables = [LEDGER_TABLE] if pk.operation == "create" else [pk.table, LEDGER_TABLE]
        return [Step("LOCK " + ", ".join(d.table_ref(pk.database, t) for t in tables), "lock")]
    if d.lock == "get_lock":
        # Session lock; 60 s wait, then the file is retried (TransientError).
        name = "shipyard:" + pk.lock_name
        return [Step(f"SELECT GET_LOCK({d.param}, 60)", "lock", (name[:64],))]
    return []  # "process": the engine serialises writers in-process


def release_steps(d: Dialect, pk: ParsedKey) -> list[Step]:
    if d.lock == "get_lock":
        return [Step(f"SELECT RELEASE_LOCK({d.param})", "sql", (("shipyard:" + pk.lock_name)[:64],), finally_=True)]
    return []


def check_step(d: Dialect, pk: ParsedKey, h: str) -> Step:
    return Step(lookup_sql(d, pk.database), "check", (h,))


def ledger_step(d: Dialect, pk: ParsedKey, h: str, etag: str | None, size: int | None) -> Step:
    return Step(record_sql(d, pk.database), "ledger",
                record_params(h, pk.key, etag, size, pk.operation, pk.table, pk.archive_key))


def new_plan(d: Dialect, pk: ParsedKey, etag: str | None) -> Plan:
    return Plan(pk.key, str(pk.operation), d, pk.database, pk.table, key_hash(pk.key, etag))


def finish(plan: Plan, d: Dialect, pk: ParsedKey, body: list[Step], etag: str | None, size: int | None) -> Plan:
    plan.setup = setup_steps(d, pk)
    plan.steps = [*lock_steps(d, pk), check_step(d, pk, plan.key_hash), *body, ledger_step(d, pk, plan.key_hash, etag, size),
                  *release_steps(d, pk)]
    return plan


def failure_plan(d: Dialect, pk: ParsedKey, etag: str | None, size: int | None, failed_key: str) -> Plan:
    """The ledger row of a failed attempt (status `failed`, archive key under failed/), so the
    ledger keeps every attempt at a file, a retried one included. Its key hash names the attempt,
    not the object version: the version stays unknown to `ledger_entry`, so the file loads when
    it comes back."""
    h = key_hash(f"{pk.key}\nfailed:{failed_key}", etag)
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
    plan = Plan(pk.key, "record", d, pk.database, pk.table, h)
    plan.setup = setup_steps(d, pk)
    plan.steps = [Step(record_sql(d, pk.database), params=(h, pk.key, etag, size, str(pk.operation), pk.table,
                                                           "failed", None, None, now, failed_key))]
    return plan


def options_steps(d: Dialect, pk: ParsedKey, options: InputOptions | None) -> list[Step]:
    """Store the table's input options (none: the JSON `null`, read back as the defaults), in the
    plan's transaction, as one upsert where the engine has one. Never a DELETE, so the loader role
    needs no right it does not already have (docs/security.md's grants). Not an UPDATE followed by
    an INSERT on InnoDB: two creates at once each take a gap lock with the UPDATE of a missing row
    and then deadlock on each other's INSERT."""
    ref = d.table_ref(pk.database, OPTIONS_TABLE)
    value = options.model_dump_json() if options is not None else "null"
    if d.upsert == "on_duplicate_key":
        return [Step(f"INSERT INTO {ref} (table_name, input_options) VALUES ({d.param}, {d.param}) "
                     "ON DUPLICATE KEY UPDATE input_options = VALUES(input_options)", params=(pk.table, value))]
    if d.upsert == "on_conflict":
        return [Step(f"INSERT INTO {ref} (table_name, input_options) VALUES ({d.param}, {d.param}) "
                     "ON CONFLICT (table_name) DO UPDATE SET input_options = excluded.input_options",
                     params=(pk.table, value))]
    return [
        Step(f"UPDATE {ref} SET input_options = {d.param} WHERE table_name = {d.param}", params=(value, pk.table)),
        Step(f"INSERT INTO {ref} (table_name, input_options) SELECT {d.param}, {d.param} "
             f"WHERE NOT EXISTS (SELECT 1 FROM {ref} WHERE table_name = {d.param})",
             params=(pk.table, value, pk.table)),
    ]


def suggest(name: str, choices: list[str]) -> str:
    close = did_you_mean(name, choices)
    return f"{close} " if close else ""


def column_list(d: Dialect, names: list[str]) -> str:
    return ", ".join(d.q(n) for n in names)
