"""Plans for data files: append (load) and upsert rows. Pure: no I/O.

`source` is what the engine reads: a local path (DuckDB, MySQL), an s3:// URI (Redshift's COPY),
or anything for COPY FROM STDIN (shown in the plan only).
"""

from __future__ import annotations

from shipyard.errors import ConfigError, InputError
from shipyard.propagator.datafile import DataFile
from shipyard.propagator.dialects import Dialect
from shipyard.propagator.duckdb_reader import reader_sql
from shipyard.propagator.layout import ParsedKey
from shipyard.propagator.plan.model import Plan, Step, TableInfo, column_list, finish, new_plan, suggest


def check_file_columns(pk: ParsedKey, info: TableInfo, data: DataFile) -> None:
    """Every file column must be a table column; table columns missing from the file get NULL/default."""
    existing = list(info.columns)
    for i, c in enumerate(data.columns, 1):
        if c not in info.columns:
            where = {"line": 1, "column": i, "column_name": c} if data.format == "csv" else {"field": c}
            raise InputError(
                f"the file has a column {c!r} that {pk.database}.{pk.table} does not have",
                hint=f"{suggest(c, existing)}rename or remove the column, or add it with a schema/update "
                f"spec first (the table's columns: {', '.join(existing)})",
                where=where,
            )


def copy_step(d: Dialect, table: str, cols: list[str], data: DataFile, source: str, iam_role: str | None,
              info: TableInfo | None = None) -> Step:
    if d.bulk == "copy_stdin":
        # Everything reaches COPY as CSV with a header (JSON and Parquet are converted on the fly).
        return Step(f"COPY {table} ({column_list(d, cols)}) FROM STDIN WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')",
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
        cl = f" ({column_list(d, cols)})" if data.format != "parquet" else ""
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
        body = [Step(f"INSERT INTO {table} ({column_list(d, cols)}) SELECT {sel} FROM {reader_sql(data, source, info.columns)}",
                     counts=True)]
    else:
        body = [copy_step(d, table, cols, data, source, iam_role, info)]
    plan = finish(new_plan(d, pk, etag), d, pk, body, etag, size)
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
    col_list = column_list(d, cols)
    body: list[Step] = []

    if d.upsert == "on_conflict":
        sets = ", ".join(f"{d.q(c)} = EXCLUDED.{d.q(c)}" for c in rest)
        action = f"DO UPDATE SET {sets}" if rest else "DO NOTHING"
        if d.bulk == "duckdb_read":
            body.append(Step(f"CREATE TEMP TABLE {stage} AS SELECT {col_list} FROM {table} LIMIT 0"))
            body.append(Step(f"INSERT INTO {stage} ({col_list}) SELECT {col_list} FROM {reader_sql(data, source, info.columns)}",
                             counts=True))
            # rowid follows insertion (file) order in a table filled by one INSERT.
            body.append(Step(
                f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage} "
                f"QUALIFY row_number() OVER (PARTITION BY {column_list(d, key)} ORDER BY rowid DESC) = 1 "
                f"ON CONFLICT ({column_list(d, key)}) {action}"))
            body.append(Step(f"DROP TABLE {stage}"))
        else:
            body.append(Step(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {col_list} FROM {table} WITH NO DATA"))
            body.append(copy_step(d, stage, cols, data, source, iam_role, info))
            fast = f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage} ON CONFLICT ({column_list(d, key)}) {action}"
            # A freshly COPYed temp table's ctid follows the file's order: keep the last row per key.
            dedup = (f"INSERT INTO {table} ({col_list}) SELECT DISTINCT ON ({column_list(d, key)}) {col_list} FROM {stage} "
                     f"ORDER BY {column_list(d, key)}, ctid DESC ON CONFLICT ({column_list(d, key)}) {action}")
            # ON CONFLICT refuses a key twice in one statement (SQLSTATE 21000,
            # https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT): try the plain
            # statement first, deduplicate only when the file repeats a key.
            body.append(Step(fast, fallback=(Step(dedup),)))
    elif d.upsert == "on_duplicate_key":
        # MySQL: a key-less copy of the file's columns, then one INSERT ... ON DUPLICATE KEY UPDATE
        # that applies rows in file order, so the last row of a key wins.
        body.append(Step(f"CREATE TEMPORARY TABLE {stage} AS SELECT {col_list} FROM {table} LIMIT 0"))
        body.append(copy_step(d, stage, cols, data, source, iam_role, info))
        sets = ", ".join(f"{d.q(c)} = VALUES({d.q(c)})" for c in (rest or key[:1]))
        body.append(Step(f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage} ON DUPLICATE KEY UPDATE {sets}"))
        body.append(Step(f"DROP TEMPORARY TABLE {stage}"))
    else:  # update_then_insert: Redshift's merge by column list
        body.append(Step(f"CREATE TEMP TABLE {stage} (LIKE {table})"))
        body.append(copy_step(d, stage, cols, data, source, iam_role, info))
        match = " AND ".join(f"{table}.{d.q(c)} = {stage}.{d.q(c)}" for c in key)
        if rest:
            sets = ", ".join(f"{d.q(c)} = {stage}.{d.q(c)}" for c in rest)
            body.append(Step(f"UPDATE {table} SET {sets} FROM {stage} WHERE {match}"))
        body.append(Step(f"DELETE FROM {stage} USING {table} WHERE {match}"))
        body.append(Step(f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage}"))
        body.append(Step(f"DROP TABLE {stage}"))
    plan = finish(new_plan(d, pk, etag), d, pk, body, etag, size)
    plan.source = source if d.bulk == "copy_stdin" else None
    return plan
