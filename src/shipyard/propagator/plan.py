"""Plans: the statements a file would run, built without any I/O.

`plan_create / plan_alter / plan_load / plan_upsert` return a `Plan`: `setup` (idempotent
statements run in their own short transaction: the schema and the ledger table) and `steps`
(one transaction: the table lock, the ledger check, the change itself, the ledger row). An
engine (engines/) runs a plan; `Plan.render()` prints it (`shipyard propagator plan`), and
golden tests parse it with sqlglot. Bad input is refused here, before anything runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from shipyard.errors import ConfigError, InputError, did_you_mean
from shipyard.propagator.dialects import Dialect
from shipyard.propagator.inputs import DataFile
from shipyard.propagator.layout import ParsedKey
from shipyard.propagator import ledger
# Re-exported: callers (tests, the reliability suite) import these from plan.
from shipyard.propagator.ledger import LEDGER_TABLE, ROWS, SECONDS, Marker, key_hash  # noqa: F401
from shipyard.propagator.specs import AddColumns, CreateSpec, DropColumns

# Values an engine fills in while running the plan (re-exported for callers of plan.py).
_Marker = Marker

StepKind = Literal["sql", "lock", "check", "copy", "ledger"]


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
                shown = d.literal(p) if not isinstance(p, _Marker) else f"<{p.name}>"
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


# -- shared pieces ------------------------------------------------------------------------------

def ledger_ddl(d: Dialect, database: str) -> str:
    return ledger.ddl(d, database)


def _setup(d: Dialect, pk: ParsedKey) -> list[Step]:
    steps = []
    if d.database_is_schema:
        steps.append(Step(f"CREATE SCHEMA IF NOT EXISTS {d.q(pk.database)}"))
    steps.append(Step(ledger_ddl(d, pk.database)))
    return steps


def _lock(d: Dialect, pk: ParsedKey) -> list[Step]:
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


def _lock_release(d: Dialect, pk: ParsedKey) -> list[Step]:
    if d.lock == "get_lock":
        return [Step(f"SELECT RELEASE_LOCK({d.param})", "sql", (("shipyard:" + pk.lock_name)[:64],), finally_=True)]
    return []


def _check(d: Dialect, pk: ParsedKey, h: str) -> Step:
    return Step(ledger.lookup_sql(d, pk.database), "check", (h,))


def _ledger(d: Dialect, pk: ParsedKey, h: str, etag: str | None, size: int | None) -> Step:
    return Step(ledger.record_sql(d, pk.database), "ledger",
                ledger.record_params(h, pk.key, etag, size, pk.operation, pk.table))


def _new(d: Dialect, pk: ParsedKey, etag: str | None) -> Plan:
    return Plan(pk.key, str(pk.operation), d, pk.database, pk.table, key_hash(pk.key, etag))


def _finish(plan: Plan, d: Dialect, pk: ParsedKey, body: list[Step], etag: str | None, size: int | None) -> Plan:
    plan.setup = _setup(d, pk)
    plan.steps = [*_lock(d, pk), _check(d, pk, plan.key_hash), *body, _ledger(d, pk, plan.key_hash, etag, size),
                  *_lock_release(d, pk)]
    return plan


def _suggest(name: str, choices: list[str]) -> str:
    close = did_you_mean(name, choices)
    return f"{close} " if close else ""


def _cols(d: Dialect, names: list[str]) -> str:
    return ", ".join(d.q(n) for n in names)


# -- create / alter -----------------------------------------------------------------------------

def plan_create(d: Dialect, pk: ParsedKey, spec: CreateSpec, *, etag: str | None = None,
                size: int | None = None, existing: TableInfo | None = None) -> Plan:
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
    if existing is not None:
        if d.transactional_ddl or list(existing.columns) != list(spec.column_specification):
            raise InputError(f"table {pk.database}.{pk.table} already exists",
                             hint="add or drop columns with a schema/update spec; a create runs once per table")
        return _finish(_new(d, pk, etag), d, pk, [], etag, size)
    table = d.table_ref(pk.database, pk.table)
    cols = [f"{d.q(c)} {d.type_sql(t, c)}" + (" NOT NULL" if c in spec.primary_key else "")
            for c, t in spec.column_specification.items()]
    if spec.primary_key:
        # Redshift keeps it as an informational constraint (not enforced; the planner uses it).
        cols.append(f"PRIMARY KEY ({_cols(d, spec.primary_key)})")
    sql = f"CREATE TABLE {table} (" + ", ".join(cols) + ")"
    if d.dist_sort_keys:
        sql += f" DISTKEY({d.q(spec.dist_key or '')}) COMPOUND SORTKEY({_cols(d, spec.sort_key)})"
    body = [Step(sql)]
    if spec.sort_key and d.sort_key_as_index:
        idx = d.q(f"{pk.table}__sort_key"[:63])
        body.append(Step(f"CREATE INDEX {idx} ON {table} ({_cols(d, spec.sort_key)})"))
    return _finish(_new(d, pk, etag), d, pk, body, etag, size)


def _already_applied(spec: AddColumns | DropColumns, info: TableInfo) -> bool:
    if isinstance(spec, AddColumns):
        return all(c in info.columns for c in spec.column_specification)
    return all(c not in info.columns for c in spec.column_specification)


def plan_alter(d: Dialect, pk: ParsedKey, spec: AddColumns | DropColumns, info: TableInfo, *,
               etag: str | None = None, size: int | None = None) -> Plan:
    table = d.table_ref(pk.database, pk.table)
    existing = list(info.columns)
    clauses: list[str] = []
    if not d.transactional_ddl and _already_applied(spec, info):
        # Without transactional DDL the ALTER and the ledger row are two steps; finding the change
        # made and the spec still pending means a run stopped between them: record it, change nothing.
        return _finish(_new(d, pk, etag), d, pk, [], etag, size)
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
                    hint=f"{_suggest(c, existing)}the table's columns are: {', '.join(existing)}",
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
    plan = _finish(_new(d, pk, etag), d, pk, body, etag, size)
    plan.setup.extend(early)
    return plan


# -- load / upsert --------------------------------------------------------------------------------

def check_file_columns(pk: ParsedKey, info: TableInfo, data: DataFile) -> None:
    """Every file column must be a table column; table columns missing from the file get NULL/default."""
    existing = list(info.columns)
    for i, c in enumerate(data.columns, 1):
        if c not in info.columns:
            where = {"line": 1, "column": i, "column_name": c} if data.format == "csv" else {"field": c}
            raise InputError(
                f"the file has a column {c!r} that {pk.database}.{pk.table} does not have",
                hint=f"{_suggest(c, existing)}rename or remove the column, or add it with a schema/update "
                f"spec first (the table's columns: {', '.join(existing)})",
                where=where,
            )


def _reader(d: Dialect, data: DataFile, source: str, info: TableInfo) -> str:
    """DuckDB's own reader for the file, typed by the table's columns."""
    path = d.literal(source)
    if data.format == "csv":
        cols = "{" + ", ".join(f"{d.literal(c)}: {d.literal(info.columns[c])}" for c in data.columns) + "}"
        # Strict: a short or long row, a stray quote or a bad value is an error with its line,
        # never skipped (https://duckdb.org/docs/stable/data/csv/reading_faulty_csv_files).
        # hive_partitioning off: the key's destination=/database=/table_name= folders are not columns.
        return (f"read_csv({path}, header = true, auto_detect = false, hive_partitioning = false, delim = ',', quote = '\"', "
                f"escape = '\"', strict_mode = true, null_padding = false, columns = {cols}"
                + (", compression = 'gzip'" if data.compression == "gzip" else "") + ")")
    if data.format in ("jsonl", "json"):
        cols = "{" + ", ".join(f"{d.literal(c)}: {d.literal(info.columns[c])}" for c in data.columns) + "}"
        fmt = "newline_delimited" if data.format == "jsonl" else "array"
        return (f"read_json({path}, format = '{fmt}', hive_partitioning = false, columns = {cols}"
                + (", compression = 'gzip'" if data.compression == "gzip" else "") + ")")
    return f"read_parquet({path}, hive_partitioning = false)"


def _copy_csv(d: Dialect, table: str, cols: list[str], data: DataFile, source: str, iam_role: str | None,
              info: TableInfo | None = None) -> Step:
    if d.bulk == "copy_stdin":
        # Everything reaches COPY as CSV with a header (JSON and Parquet are converted on the fly).
        return Step(f"COPY {table} ({_cols(d, cols)}) FROM STDIN WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')",
                    "copy", counts=True)
    if d.bulk == "copy_s3":
        # https://docs.aws.amazon.com/redshift/latest/dg/r_COPY.html
        if not source.startswith("s3://"):
            raise ConfigError(f"{d.name} loads with COPY FROM S3, and this bucket is a local folder",
                              hint="run the propagator on the S3 bucket (--bucket s3://bucket/prefix)")
        role = d.literal(iam_role or "arn:aws:iam::<account>:role/<configure iam_role>")
        fmt = {"csv": "FORMAT AS CSV IGNOREHEADER 1", "jsonl": "FORMAT AS JSON 'auto ignorecase'",
               "json": "FORMAT AS JSON 'auto ignorecase'", "parquet": "FORMAT AS PARQUET"}[data.format]
        gz = " GZIP" if data.compression == "gzip" else ""
        cl = f" ({_cols(d, cols)})" if data.format != "parquet" else ""
        return Step(f"COPY {table}{cl} FROM {d.literal(source)} IAM_ROLE {role} {fmt}{gz} "
                    "TIMEFORMAT 'auto' DATEFORMAT 'auto' EMPTYASNULL", "copy", counts=True)
    if d.bulk == "load_data_local":
        # The file is DuckDB's strict rewrite (engines/common.py): "\n" lines, '"' quoting, NULL
        # as the bare word NULL. Columns load directly; only BOOLEAN (TINYINT(1) in MySQL, which
        # refuses 'true' / 'false' as text) goes through a user variable.
        types = info.columns if info else {}
        targets, sets = [], []
        for i, c in enumerate(cols):
            if types.get(c, "").lower().startswith("tinyint(1)"):
                targets.append(f"@v{i}")
                sets.append(f"{d.q(c)} = CASE LOWER(@v{i}) WHEN 'true' THEN 1 WHEN 't' THEN 1 WHEN 'false' THEN 0 "
                            f"WHEN 'f' THEN 0 ELSE @v{i} END")
            else:
                targets.append(d.q(c))
        set_clause = (" SET " + ", ".join(sets)) if sets else ""
        return Step(f"LOAD DATA LOCAL INFILE {d.literal(source)} INTO TABLE {table} CHARACTER SET utf8mb4 "
                    "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
                    f"LINES TERMINATED BY '\\n' IGNORE 1 LINES ({', '.join(targets)}){set_clause}", "copy", counts=True)
    raise AssertionError(d.bulk)


def plan_load(d: Dialect, pk: ParsedKey, info: TableInfo, data: DataFile, source: str, *,
              etag: str | None = None, size: int | None = None, iam_role: str | None = None) -> Plan:
    """Append the file's rows. `source`: a path DuckDB/MySQL read, an s3:// URI for Redshift."""
    check_file_columns(pk, info, data)
    table = d.table_ref(pk.database, pk.table)
    cols = data.columns
    if d.bulk == "duckdb_read":
        sel = ", ".join(d.q(c) for c in cols)
        body = [Step(f"INSERT INTO {table} ({_cols(d, cols)}) SELECT {sel} FROM {_reader(d, data, source, info)}",
                     counts=True)]
    else:
        body = [_copy_csv(d, table, cols, data, source, iam_role, info)]
    plan = _finish(_new(d, pk, etag), d, pk, body, etag, size)
    plan.source = source if d.bulk == "copy_stdin" else None
    return plan


def plan_upsert(d: Dialect, pk: ParsedKey, info: TableInfo, data: DataFile, source: str, *,
                etag: str | None = None, size: int | None = None, iam_role: str | None = None) -> Plan:
    """Insert new keys, update existing ones: only the file's columns are written.

    Several rows with one key in one file: the last one wins (file order).
    """
    if not info.primary_key:
        raise InputError(
            f"{pk.database}.{pk.table} has no primary key, so input/update cannot match rows",
            hint="use input/load to append, or recreate the table with a primary_key in its create spec",
        )
    check_file_columns(pk, info, data)
    missing = [c for c in info.primary_key if c not in data.columns]
    if missing:
        raise InputError(
            f"the file lacks primary key column(s) {', '.join(missing)}, so its rows cannot be matched",
            hint=f"add the column(s) {', '.join(missing)} to the file", where={"line": 1} if data.format == "csv" else None)
    table = d.table_ref(pk.database, pk.table)
    cols = data.columns
    key = info.primary_key
    rest = [c for c in cols if c not in key]
    stage = d.q(f"_shipyard_stage_{pk.table}"[:63])
    col_list = _cols(d, cols)
    body: list[Step] = []

    if d.upsert == "on_conflict":
        sets = ", ".join(f"{d.q(c)} = EXCLUDED.{d.q(c)}" for c in rest)
        action = f"DO UPDATE SET {sets}" if rest else "DO NOTHING"
        if d.bulk == "duckdb_read":
            body.append(Step(f"CREATE TEMP TABLE {stage} AS SELECT {col_list} FROM {table} LIMIT 0"))
            body.append(Step(f"INSERT INTO {stage} ({col_list}) SELECT {col_list} FROM {_reader(d, data, source, info)}",
                             counts=True))
            # rowid follows insertion (file) order in a table filled by one INSERT.
            body.append(Step(
                f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage} "
                f"QUALIFY row_number() OVER (PARTITION BY {_cols(d, key)} ORDER BY rowid DESC) = 1 "
                f"ON CONFLICT ({_cols(d, key)}) {action}"))
            body.append(Step(f"DROP TABLE {stage}"))
        else:
            body.append(Step(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {col_list} FROM {table} WITH NO DATA"))
            body.append(_copy_csv(d, stage, cols, data, source, iam_role, info))
            fast = f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage} ON CONFLICT ({_cols(d, key)}) {action}"
            # A freshly COPYed temp table's ctid follows the file's order: keep the last row per key.
            dedup = (f"INSERT INTO {table} ({col_list}) SELECT DISTINCT ON ({_cols(d, key)}) {col_list} FROM {stage} "
                     f"ORDER BY {_cols(d, key)}, ctid DESC ON CONFLICT ({_cols(d, key)}) {action}")
            body.append(Step(fast, fallback=(Step(dedup),)) if d.upsert_dedupe == "fallback" else Step(dedup))
    elif d.upsert == "on_duplicate_key":
        # MySQL: a key-less copy of the file's columns, then one INSERT ... ON DUPLICATE KEY UPDATE
        # that applies rows in file order, so the last row of a key wins.
        body.append(Step(f"CREATE TEMPORARY TABLE {stage} AS SELECT {col_list} FROM {table} LIMIT 0"))
        body.append(_copy_csv(d, stage, cols, data, source, iam_role, info))
        sets = ", ".join(f"{d.q(c)} = VALUES({d.q(c)})" for c in (rest or key[:1]))
        body.append(Step(f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage} ON DUPLICATE KEY UPDATE {sets}"))
        body.append(Step(f"DROP TEMPORARY TABLE {stage}"))
    else:  # update_then_insert: Redshift's merge by column list
        body.append(Step(f"CREATE TEMP TABLE {stage} (LIKE {table})"))
        body.append(_copy_csv(d, stage, cols, data, source, iam_role, info))
        match = " AND ".join(f"{table}.{d.q(c)} = {stage}.{d.q(c)}" for c in key)
        if rest:
            sets = ", ".join(f"{d.q(c)} = {stage}.{d.q(c)}" for c in rest)
            body.append(Step(f"UPDATE {table} SET {sets} FROM {stage} WHERE {match}"))
        body.append(Step(f"DELETE FROM {stage} USING {table} WHERE {match}"))
        body.append(Step(f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage}"))
        body.append(Step(f"DROP TABLE {stage}"))
    plan = _finish(_new(d, pk, etag), d, pk, body, etag, size)
    plan.source = source if d.bulk == "copy_stdin" else None
    return plan
