"""Plans for schema files: create a table, add or drop columns. Pure: no I/O."""

from __future__ import annotations

from shipyard.errors import InputError
from shipyard.propagator.dialects import Dialect
from shipyard.propagator.layout import ParsedKey
from shipyard.propagator.plan.data import redshift_encoding
from shipyard.propagator.plan.model import (
    Plan,
    Step,
    TableInfo,
    column_list,
    finish,
    lock_id,
    new_plan,
    options_steps,
    suggest,
)
from shipyard.propagator.specs import AddColumns, CreateSpec, DropColumns, ForeignKey, SetOptions


def plan_create(d: Dialect, pk: ParsedKey, spec: CreateSpec, *, etag: str | None = None,
                size: int | None = None, existing: TableInfo | None = None,
                referenced: dict[str, TableInfo | None] | None = None) -> Plan:
    """`existing`: the table as it is, when it exists. Only an engine without transactional DDL
    accepts that, and only when the table has exactly the spec's columns: a run stopped between
    its CREATE and its ledger row; the plan then only records it."""
    if d.dist_sort_keys and (not spec.dist_key or not spec.sort_key):
        missing = [k for k, v in (("dist_key", spec.dist_key), ("sort_key", spec.sort_key)) if not v]
        raise InputError(
            f"a {d.name} table needs dist_key and sort_key; this spec has no {' and no '.join(missing)}",
            hint="add \"dist_key\": \"<column joined or grouped on most>\" and \"sort_key\": [\"<column filtered "
            "on most, e.g. a timestamp>\"]",
            where={"field": missing[0]},
        )
    redshift_encoding(d, spec.input_options)
    if existing is not None:
        if d.transactional_ddl or list(existing.columns) != list(spec.column_specification):
            raise InputError(f"table {pk.database}.{pk.table} already exists",
                             hint="add or drop columns with a schema/update spec; a create runs once per table")
        return finish(new_plan(d, pk, etag), d, pk, options_steps(d, pk, spec.input_options), etag, size)
    table = d.table_ref(pk.database, pk.table)
    cols = [f"{d.q(c)} {d.type_sql(t, c)}" + (" NOT NULL" if c in spec.primary_key else "")
            for c, t in spec.column_specification.items()]
    if spec.primary_key:
        # Redshift keeps it as an informational constraint (not enforced; the planner uses it).
        cols.append(f"PRIMARY KEY ({column_list(d, spec.primary_key)})")
    for fk in spec.foreign_keys:
        # Enforced by DuckDB, PostgreSQL and MySQL; informational on Redshift, as its primary keys.
        # `referenced`: the live tables (None: missing); offline, only the tables whose specs were
        # given, so a reference to one that was not is left to the live check.
        if referenced is not None and (fk.references.table in referenced or fk.references.table == pk.table):
            check_reference(pk, spec, fk, referenced.get(fk.references.table))
        cols.append(f"FOREIGN KEY ({column_list(d, fk.columns)}) REFERENCES "
                    f"{d.table_ref(pk.database, fk.references.table)} ({column_list(d, fk.references.columns)})")
    sql = f"CREATE TABLE {table} (" + ", ".join(cols) + ")"
    if d.dist_sort_keys:
        sql += f" DISTKEY({d.q(spec.dist_key or '')}) COMPOUND SORTKEY({column_list(d, spec.sort_key)})"
    body = [Step(sql), *options_steps(d, pk, spec.input_options)]
    if spec.sort_key and d.sort_key_as_index:
        # A short hashed name: never the name of a table (ours start with _shipyard, users' may
        # not), never truncated into another index's name (PostgreSQL's limit is 63 bytes).
        idx = d.q(f"_shipyard_sort_{lock_id(pk.database + '.' + pk.table) & 0xFFFFFFFFFFFF:012x}")
        body.append(Step(f"CREATE INDEX {idx} ON {table} ({column_list(d, spec.sort_key)})"))
    return finish(new_plan(d, pk, etag), d, pk, body, etag, size)


def already_applied(spec: AddColumns | DropColumns, info: TableInfo) -> bool:
    if isinstance(spec, AddColumns):
        return all(c in info.columns for c in spec.column_specification)
    return all(c not in info.columns for c in spec.column_specification)


def plan_alter(d: Dialect, pk: ParsedKey, spec: AddColumns | DropColumns | SetOptions, info: TableInfo, *,
               etag: str | None = None, size: int | None = None) -> Plan:
    if isinstance(spec, SetOptions):
        # Replaces the stored options; the table itself is not touched.
        redshift_encoding(d, spec.input_options)
        return finish(new_plan(d, pk, etag), d, pk, options_steps(d, pk, spec.input_options), etag, size)
    table = d.table_ref(pk.database, pk.table)
    existing = list(info.columns)
    clauses: list[str] = []
    if not d.transactional_ddl and already_applied(spec, info):
        # Without transactional DDL the ALTER and the ledger row are two steps; finding the change
        # made and the spec still pending means a run stopped between them: record it, change nothing.
        return finish(new_plan(d, pk, etag), d, pk, [], etag, size)
    if isinstance(spec, AddColumns):
        for c, t in spec.column_specification.items():
            if c in info.columns:
                raise InputError(f"column {c!r} already exists in {pk.database}.{pk.table}",
                                 hint="remove it from the spec, or drop it first", where={"field": f"column_specification.{c}"})
            clauses.append(f"ADD COLUMN {d.q(c)} {d.type_sql(t, c)}")
    else:
        for c in spec.column_specification:
            if c not in info.columns:
                raise InputError(
                    f"cannot drop column {c!r}: {pk.database}.{pk.table} has no such column",
                    hint=f"{suggest(c, existing)}the table's columns are: {', '.join(existing)}",
                    where={"field": "column_specification"})
            if c in info.primary_key:
                raise InputError(f"cannot drop column {c!r}: it is part of the primary key",
                                 hint="recreate the table if the key must change", where={"field": "column_specification"})
        if len(set(spec.column_specification)) >= len(existing):
            raise InputError("cannot drop every column of a table", hint="keep at least one column")
        clauses = [f"DROP COLUMN {d.q(c)}" for c in spec.column_specification]
    rebuild: list[Step] = []
    if isinstance(spec, DropColumns) and d.drop_column_blocked_by_index and info.indexes:
        # DuckDB refuses ALTER ... DROP COLUMN while any index is on the table
        # (https://duckdb.org/docs/stable/sql/indexes#limitations): drop them, alter, recreate
        # the ones whose columns all remain; in the same transaction.
        dropped = set(spec.column_specification)
        drop = {name: f"DROP INDEX {d.q(pk.database)}.{d.q(name)}" if d.database_is_schema else f"DROP INDEX {d.q(name)}"
                for name in info.indexes}
        pre = [Step(drop[name]) for name, (cols, _) in info.indexes.items() if not dropped & set(cols)]
        # An index ON a dropped column must be gone before the transaction: DuckDB still sees an
        # index dropped inside the same transaction ("Cannot drop this column: an index depends
        # on it!"). It goes with its column anyway, so it is dropped first, on its own.
        early = [Step(drop[name].replace("DROP INDEX ", "DROP INDEX IF EXISTS ", 1))
                 for name, (cols, _) in info.indexes.items() if dropped & set(cols)]
        rebuild = [Step(sql) for cols, sql in info.indexes.values() if not dropped & set(cols)]
    else:
        pre, early = [], []
    if d.transactional_ddl:
        # One ALTER per column: Redshift allows only one (https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html);
        # the transaction makes them all-or-nothing.
        body = [*pre, *[Step(f"ALTER TABLE {table} {c}") for c in clauses], *rebuild]
    else:
        # MySQL commits DDL implicitly; one ALTER with every clause is atomic by itself.
        body = [Step(f"ALTER TABLE {table} " + ", ".join(clauses))]
    plan = finish(new_plan(d, pk, etag), d, pk, body, etag, size)
    plan.setup.extend(early)
    return plan


def check_reference(pk: ParsedKey, spec: CreateSpec, fk: ForeignKey, target: TableInfo | None) -> None:
    """A foreign key must point at an existing table's primary key, column for column."""
    ref = fk.references
    if ref.table == pk.table:
        target = TableInfo(spec.column_specification, list(spec.primary_key))
    if target is None:
        raise InputError(f"foreign key {fk.columns} references {pk.database}.{ref.table}, which does not exist",
                         hint="create the referenced table first (its spec sorts before this one, or an "
                         "earlier drop)", where={"field": "foreign_keys"})
    missing = [c for c in ref.columns if c not in target.columns]
    if missing:
        raise InputError(f"foreign key {fk.columns}: {pk.database}.{ref.table} has no column(s) {', '.join(missing)}",
                         hint=f"{suggest(missing[0], list(target.columns))}reference its primary key "
                         f"({', '.join(target.primary_key) or 'it has none'})", where={"field": "foreign_keys"})
    if sorted(ref.columns) != sorted(target.primary_key):
        raise InputError(f"foreign key {fk.columns} must reference the primary key of {pk.database}.{ref.table} "
                         f"({', '.join(target.primary_key) or 'it has none'}), not {', '.join(ref.columns)}",
                         hint="reference the primary key columns, or give that table a primary key",
                         where={"field": "foreign_keys"})
