"""Planning one pending key against the live table: its spec read and checked, the table's
options and columns, the Source of its rows made the way the destination reads them (a local
file, a pipe for MariaDB, bad rows screened out), then the plan. Used by runner.py for runs,
`plan` and `retry`."""

from __future__ import annotations

from dataclasses import replace

from shipyard.errors import InputError
from shipyard.propagator.engines import Engine, destination, table_options
from shipyard.propagator.layout import ParsedKey
from shipyard.propagator.plan import Plan, plan_alter, plan_create, plan_load, plan_upsert
from shipyard.propagator.sources import Source, open_source
from shipyard.propagator.specs import MAX_SPEC_BYTES, AddColumns, parse_create, parse_update
from shipyard.settings import Settings
from shipyard.store import ObjectStore


def plan_file(store: ObjectStore, settings: Settings, pk: ParsedKey, engine: Engine, etag: str | None, size: int, *,
              materialize: bool) -> tuple[Plan, Source | None]:
    """The plan of one pending key against the live table, and the Source its rows come from
    (close it when done). `materialize`: make the local file / pipe / screened rows the engine
    reads (a run); without it, only the statements (`plan`, `retry`'s checks)."""
    d = engine.dialect
    _, _, cfg = destination(pk.destination, settings)
    table_info = engine.describe(pk.database, pk.table)
    if pk.operation == "create":
        spec = parse_create(read_spec(store, pk.key))
        # plan_create refuses an existing table (bar a MySQL create a crash kept from its ledger row).
        refs = {fk.references.table: engine.describe(pk.database, fk.references.table) for fk in spec.foreign_keys}
        return plan_create(d, pk, spec, etag=etag, size=size, existing=table_info, referenced=refs), None
    if table_info is None:
        raise InputError(f"table {pk.database}.{pk.table} does not exist on {pk.destination}",
                         hint="drop a schema/create/<name>.json spec for it first")
    if pk.operation == "alter":
        return plan_alter(d, pk, parse_update(read_spec(store, pk.key)), table_info, etag=etag, size=size), None
    options = table_options(engine, pk.database, pk.table)
    source = open_source(store, pk.key, pk.name, options,
                         list(table_info.columns))  # the table's CSV input options, its columns
    try:
        if materialize and options is not None and options.max_bad_rows and d.bulk != "copy_s3":
            # Bad rows set aside before the load (screen.py); Redshift's COPY does it itself
            # (MAXERROR, plan/data.py).
            source.screen(table_info.columns, options.max_bad_rows,
                          null="NULL" if d.bulk == "load_data_local" else "")
        data = source.data
        if d.bulk == "copy_s3" and options is not None and options.max_bad_rows:
            # Redshift's COPY sets bad rows aside itself (MAXERROR), CSV and JSON alike.
            data = replace(data, options=data.options.model_copy(update={"max_bad_rows": options.max_bad_rows}))
        if d.bulk == "duckdb_read":
            ref = source.local_file() if materialize else store.uri(pk.key)
            data = source.local_data if materialize else data
        elif d.bulk == "load_data_local":
            ref = source.plain_csv_pipe(table_info.columns, f"loading into {pk.database}.{pk.table}") \
                if materialize else store.uri(pk.key)
        else:
            ref = store.uri(pk.key)
        iam_role = cfg.iam_role if cfg is not None else None
        fn = plan_load if pk.operation == "load" else plan_upsert
        return fn(d, pk, table_info, data, ref, etag=etag, size=size, iam_role=iam_role), source
    except BaseException:
        source.close()
        raise


def validate_spec(store: ObjectStore, pk: ParsedKey, engine: Engine) -> None:
    """A bad spec is refused before anything touches the database."""
    d = engine.dialect
    if pk.operation == "create":
        plan_create(d, pk, parse_create(read_spec(store, pk.key)))
    elif pk.operation == "alter":
        spec = parse_update(read_spec(store, pk.key))
        if isinstance(spec, AddColumns):
            for c, t in spec.column_specification.items():
                d.type_sql(t, c)


def read_spec(store: ObjectStore, key: str) -> bytes:
    with store.open(key) as f:
        return f.read(MAX_SPEC_BYTES + 1)
