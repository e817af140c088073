"""Checks without a database: `shipyard propagator validate` and `plan --offline`.

For the CI of a repository of specs: every spec is parsed and planned for a dialect (types,
identifiers, Redshift's dist and sort keys), and every data file's header is checked against the
table its folder's specs describe (columns, the primary key an upsert needs). Nothing connects
anywhere. What only the live table can tell (an existing table, a column added by hand) is
reported as such by `plan` without --offline.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import InputError, ShipyardError
from shipyard.propagator.dialects import DIALECTS, Dialect, get_dialect
from shipyard.propagator.engines import destination
from shipyard.propagator.layout import DATA_SUFFIXES, OutsideLayout, ParsedKey, parse_key
from shipyard.propagator.plan import Plan, TableInfo, check_file_columns, plan_alter, plan_create
from shipyard.propagator.schedule import order
from shipyard.propagator.sources import open_source
from shipyard.propagator.specs import MAX_SPEC_BYTES, AddColumns, SetOptions, parse_create, parse_update
from shipyard.settings import Settings
from shipyard.store import ObjectStore, open_store

DEFAULT_DIALECT = "postgres"


@dataclass
class Check:
    """The verdict on one file."""

    path: str
    operation: str
    ok: bool
    message: str = "ok"
    hint: str | None = None
    where: dict[str, Any] | None = None
    sql: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def key_of(path: Path) -> ParsedKey | None:
    """The layout key a local path ends with (from its `destination=` folder), if any."""
    parts = path.as_posix().split("/")
    for i, part in enumerate(parts):
        if part.startswith("destination="):
            try:
                return parse_key("/".join(parts[i:]))
            except (OutsideLayout, InputError):
                return None
    return None


def guess_key(path: Path, dialect: str) -> ParsedKey:
    """A key for a file outside the layout: a spec by its content, a data file by its suffix."""
    name = path.name
    folder = "input/load"
    if not name.lower().endswith(DATA_SUFFIXES) or name.lower().endswith(".json"):
        try:
            head = json.loads(path.read_bytes()[:1 << 20] or b"{}")
        except (ValueError, OSError):
            head = None
        if isinstance(head, dict):
            folder = "schema/update" if "operation_type" in head else "schema/create"
    table = "".join(c if c.isalnum() or c == "_" else "_" for c in name.split(".")[0].lower()) or "t"
    return parse_key(f"destination={dialect}/database=offline/table_name={table}/{folder}/{name}")


def dialect_for(pk: ParsedKey, wanted: str | None) -> Dialect:
    if wanted:
        return get_dialect(wanted)
    return get_dialect(pk.destination if pk.destination.lower() in DIALECTS else DEFAULT_DIALECT)


def plan_spec_offline(d: Dialect, pk: ParsedKey, data: bytes, table: TableInfo | None,
                      known: dict[str, TableInfo] | None = None) -> tuple[Plan, TableInfo | None]:
    """The plan of a schema file without a database, and the table as it is afterwards. `known`:
    the database's other tables as the given specs make them (name -> table), for foreign keys."""
    if pk.operation == "create":
        spec = parse_create(data)
        plan = plan_create(d, pk, spec, referenced=known)
        info = TableInfo({c: d.type_sql(t, c) for c, t in spec.column_specification.items()}, list(spec.primary_key),
                         options=spec.input_options)
        return plan, info
    spec2 = parse_update(data)
    if isinstance(spec2, AddColumns):
        for c, t in spec2.column_specification.items():
            d.type_sql(t, c)
    if table is None:
        raise InputError(f"{pk.name}: this update's plan needs the table as it is",
                         hint="pass the table's schema/create spec too, or run `plan` without --offline "
                         "against the database", code="needs_live_table")
    plan = plan_alter(d, pk, spec2, table)
    if isinstance(spec2, SetOptions):
        return plan, TableInfo(table.columns, table.primary_key, options=spec2.input_options)
    cols = dict(table.columns)
    if isinstance(spec2, AddColumns):
        cols.update({c: d.type_sql(t, c) for c, t in spec2.column_specification.items()})
    else:
        for c in spec2.column_specification:
            cols.pop(c, None)
    return plan, TableInfo(cols, table.primary_key, options=table.options)


def validate(paths: list[str], dialect: str | None = None) -> list[Check]:
    """Check specs and data files, table by table: specs first, in the order they would run."""
    items = []
    for p in paths:
        path = Path(p)
        pk = key_of(path.resolve()) or guess_key(path, dialect or DEFAULT_DIALECT)
        items.append((order(pk), path, pk))
    tables: dict[str, TableInfo] = {}
    created = _creates(items, dialect)  # for foreign keys to a table whose spec sorts later
    out = []
    for _, path, pk in sorted(items, key=lambda x: x[0]):
        check = Check(str(path), str(pk.operation), True)
        try:
            pk = pk.check_identifiers()
            d = dialect_for(pk, dialect)
            table = tables.get(pk.table_prefix.lower())
            if pk.operation in ("create", "alter"):
                db = pk.table_prefix.lower().rsplit("table_name=", 1)[0]
                known = {t: info for prefix, info in {**created, **tables}.items()
                         if prefix.startswith(db) and (t := prefix[len(db):].removeprefix("table_name=").rstrip("/"))}
                plan, after = plan_spec_offline(d, pk, path.read_bytes(), table, known)
                check.sql = [s.sql for s in plan.steps if s.kind == "sql"]
                if after is not None:
                    tables[pk.table_prefix.lower()] = after
            else:
                check_data_file(path, pk, table)
                if table is None:
                    check.message = "header ok (no create spec for this table given: columns not checked)"
        except ShipyardError as exc:
            check.ok, check.message, check.hint = False, exc.message, exc.hint
            check.where = exc.details.get("where")
        except OSError as exc:
            check.ok, check.message = False, f"cannot read {path}: {exc.strerror or exc}"
        out.append(check)
    return out


def _creates(items: list[tuple[Any, Path, ParsedKey]], dialect: str | None) -> dict[str, TableInfo]:
    """Each table as its create spec among `items` makes it (table prefix -> table); specs that do
    not parse are reported by the main pass."""
    out = {}
    for _, path, pk in items:
        if pk.operation != "create":
            continue
        try:
            pk = pk.check_identifiers()
            spec = parse_create(path.read_bytes())
            d = dialect_for(pk, dialect)
            out[pk.table_prefix.lower()] = TableInfo({c: d.type_sql(t, c) for c, t in spec.column_specification.items()},
                                                     list(spec.primary_key))
        except (ShipyardError, OSError):
            continue
    return out


def check_data_file(path: Path, pk: ParsedKey, table: TableInfo | None) -> None:
    """The data file's header (or first records, or Parquet schema) against the table."""
    source = open_source(open_store(str(path.resolve().parent)), path.name, path.name,
                         table.options if table else None, list(table.columns) if table else None)
    try:
        if table is None:
            return
        check_file_columns(pk, table, source.data)
        missing = [c for c in table.primary_key if c not in source.data.columns]
        if pk.operation == "upsert" and not table.primary_key:
            raise InputError(f"{pk.table} has no primary key, so input/update cannot match rows",
                             hint="use input/load, or give the create spec a primary_key")
        if pk.operation == "upsert" and missing:
            raise InputError(f"the file lacks primary key column(s) {', '.join(missing)}",
                             hint=f"add {', '.join(missing)} to the file", where={"line": 1})
    finally:
        source.close()


def plan_offline(bucket: str, key: str, dialect: str | None, settings: Settings) -> Plan:
    """`plan KEY --offline`: the create (or, given its table's create spec in the same bucket
    folder, the alter) SQL of a spec, without connecting. Data files need the live table."""
    pk = parse_key(key)
    if not pk.pending:
        raise InputError(f"{key!r} is under {pk.state}/ and will not be processed again")
    pk = pk.check_identifiers()
    if dialect or (pk.destination not in settings.destinations and pk.destination in DIALECTS):
        d = dialect_for(pk, dialect)  # no configuration needed to plan offline
    else:
        d = destination(pk.destination, settings)[0]
    if pk.operation in ("load", "upsert"):
        raise InputError(f"the plan of a data file needs the live table (its columns and keys): {key}",
                         hint="run `shipyard propagator plan` without --offline, or `validate` the file "
                         "with its table's create spec", code="needs_live_table")
    store = open_store(bucket, must_exist=True)
    with store.open(key) as f:
        data = f.read(MAX_SPEC_BYTES + 1)
    table = created_table(store, pk, d) if pk.operation == "alter" else None
    return plan_spec_offline(d, pk, data, table)[0]


def created_table(store: ObjectStore, pk: ParsedKey, d: Dialect) -> TableInfo | None:
    """The table as its create spec describes it: the first JSON under the table's schema/create/
    or succeeded/ that is a create spec (changes since are not known offline)."""
    create_key = pk.table_prefix + "schema/create/offline.json"
    for obj in [*store.list(pk.table_prefix + "schema/create/"), *store.list(pk.table_prefix + "succeeded/")]:
        if not obj.key.lower().endswith(".json") or obj.size > MAX_SPEC_BYTES:
            continue
        with store.open(obj.key) as f:
            body = f.read(MAX_SPEC_BYTES + 1)
        try:
            return plan_spec_offline(d, parse_key(create_key).check_identifiers(), body, None)[1]
        except ShipyardError:
            continue
    return None
