"""Plans for data files: append (load) and upsert rows. Pure: no I/O.

`source` is what the engine reads: a local path (DuckDB, MySQL), an s3:// URI (Redshift's COPY),
or anything for COPY FROM STDIN (shown in the plan only).
"""

from __future__ import annotations

from shipyard.errors import ConfigError, InputError
from shipyard.propagator.datafile import DataFile
from shipyard.propagator.dialects import Dialect
from shipyard.propagator.duckdb_reader import strict_select
from shipyard.propagator.layout import ParsedKey
from shipyard.propagator.plan.model import Plan, Step, TableInfo, column_list, finish, new_plan, suggest
from shipyard.propagator.specs import InputOptions


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


def copy_steps(d: Dialect, table: str, cols: list[str], data: DataFile, source: str, iam_role: str | None,
               info: TableInfo) -> list[Step]:
    """The statements that bring the file's rows into `table` (the table, or a stage)."""
    if d.bulk == "copy_stdin":
        # Everything reaches COPY as CSV (JSON and Parquet are converted on the fly to UTF-8 CSV
        # with a header); a CSV file as it is, with the table's input options.
        o = data.options if data.format == "csv" and \
            data.options.model_copy(update={"max_bad_rows": 0}) != InputOptions() else None
        opts = "HEADER true, ENCODING 'UTF8'" if o is None else (
            f"DELIMITER {d.literal(o.delimiter)}, QUOTE {d.literal(o.quote)}, NULL {d.literal(o.null)}, "
            f"HEADER {'true' if o.header else 'false'}, ENCODING {d.literal(PG_ENCODINGS[o.encoding])}")
        return [Step(f"COPY {table} ({column_list(d, cols)}) FROM STDIN WITH (FORMAT csv, {opts})", "copy", counts=True)]
    if d.bulk == "copy_s3":
        return s3_copy_steps(d, table, cols, data, source, iam_role, info)
    return [load_data_step(d, table, cols, source, info)]


def s3_copy_steps(d: Dialect, table: str, cols: list[str], data: DataFile, source: str, iam_role: str | None,
                  info: TableInfo) -> list[Step]:
    """Redshift's COPY from the object (https://docs.aws.amazon.com/redshift/latest/dg/r_COPY.html)."""
    if not source.startswith("s3://"):
        raise ConfigError(f"{d.name} loads with COPY FROM S3, and this bucket is a local folder",
                          hint="run the propagator on the S3 bucket (--bucket s3://bucket/prefix)")
    role = d.literal(iam_role or "arn:aws:iam::<account>:role/<configure iam_role>")
    origin = f"FROM {d.literal(source)} IAM_ROLE {role}"
    if data.format == "parquet":
        # COPY ... FORMAT AS PARQUET takes no column list, maps columns by position and accepts no
        # CSV or time-format options (https://docs.aws.amazon.com/redshift/latest/dg/copy-usage_notes-copy-from-columnar.html):
        # load a stage made in the file's column order, then insert by name.
        stage = d.q(f"_shipyard_parquet_{table_name_of(table)}"[:63])
        defs = ", ".join(f"{d.q(c)} {d.type_sql(info.columns[c], c)}" for c in cols)
        return [Step(f"CREATE TEMP TABLE {stage} ({defs})"),
                Step(f"COPY {stage} {origin} FORMAT AS PARQUET", "copy", counts=True),
                Step(f"INSERT INTO {table} ({column_list(d, cols)}) SELECT {column_list(d, cols)} FROM {stage}"),
                Step(f"DROP TABLE {stage}")]
    fmt = {"csv": "FORMAT AS CSV IGNOREHEADER 1", "jsonl": "FORMAT AS JSON 'auto ignorecase'",
           "json": "FORMAT AS JSON 'auto ignorecase'"}[data.format]
    empty = " EMPTYASNULL"
    o = data.options
    if data.format == "csv" and o.model_copy(update={"max_bad_rows": 0}) != InputOptions():
        redshift_encoding(d, o)
        fmt = (f"FORMAT AS CSV QUOTE AS {d.literal(o.quote)} DELIMITER AS {d.literal(o.delimiter)}"
               + (" IGNOREHEADER 1" if o.header else ""))
        if o.null:  # an empty field is then an empty string, as in PostgreSQL's COPY
            fmt, empty = fmt + f" NULL AS {d.literal(o.null)}", ""
    gz = " GZIP" if data.compression == "gzip" else ""
    bad = data.options.max_bad_rows
    steps = [Step(f"COPY {table} ({column_list(d, cols)}) {origin} {fmt}{gz} "
                  f"TIMEFORMAT 'auto' DATEFORMAT 'auto'{empty}" + (f" MAXERROR {bad}" if bad else ""), "copy", counts=True)]
    if bad:
        # The rows COPY set aside, for failed/<name>.rejects.csv
        # (https://docs.aws.amazon.com/redshift/latest/dg/r_STL_LOAD_ERRORS.html).
        steps.append(Step("SELECT line_number, TRIM(colname), TRIM(err_reason), TRIM(raw_line) FROM stl_load_errors "
                          "WHERE query = pg_last_copy_id() ORDER BY line_number", "rejects"))
    return steps


# specs.ENCODINGS' names in PostgreSQL's COPY (https://www.postgresql.org/docs/current/multibyte.html).
PG_ENCODINGS = {"utf-8": "UTF8", "latin-1": "LATIN1"}


def redshift_encoding(d: Dialect, o: InputOptions | None) -> None:
    """Redshift's COPY reads UTF-8 and UTF-16 only (its ENCODING option); ACCEPTINVCHARS would
    turn every accented latin-1 byte into '?': refuse rather than load altered values."""
    if d.bulk == "copy_s3" and o is not None and o.encoding != "utf-8":
        raise InputError(f"{d.name} COPY cannot read {o.encoding} files (only UTF-8 and UTF-16)",
                         hint="export the files as UTF-8 and remove input_options.encoding",
                         where={"field": "input_options.encoding"})


def table_name_of(ref: str) -> str:
    """The bare table name of a rendered reference (`"db"."t"` -> t), for naming stages."""
    return ref.rsplit(".", 1)[-1].strip('"`')


def load_data_step(d: Dialect, table: str, cols: list[str], source: str, info: TableInfo) -> Step:
    """MySQL / MariaDB: LOAD DATA LOCAL INFILE of DuckDB's strict rewrite of the file."""
    # The file is DuckDB's strict rewrite (sources.py): "\n" lines, '"' quoting, NULL
    # as the bare word NULL. Columns load directly; only BOOLEAN (TINYINT(1) in MySQL, which
    # refuses 'true' / 'false' as text) goes through a user variable.
    types = info.columns
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


def plan_load(d: Dialect, pk: ParsedKey, info: TableInfo, data: DataFile, source: str, *,
              etag: str | None = None, size: int | None = None, iam_role: str | None = None) -> Plan:
    """Append the file's rows. `source`: a path DuckDB/MySQL read, an s3:// URI for Redshift."""
    check_file_columns(pk, info, data)
    table = d.table_ref(pk.database, pk.table)
    cols = data.columns
    if d.bulk == "duckdb_read":
        body = [Step(f"INSERT INTO {table} ({column_list(d, cols)}) {strict_select(data, source, info.columns)}",
                     counts=True)]
    else:
        body = copy_steps(d, table, cols, data, source, iam_role, info)
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
            # The stage's columns are named by position (_s1, _s2...): its rowid, which follows
            # insertion (file) order in a table filled by one INSERT, then cannot be shadowed by a
            # user column named "rowid".
            pos = {c: d.q(f"_s{i}") for i, c in enumerate(cols, 1)}
            staged = ", ".join(pos.values())
            body.append(Step(f"CREATE TEMP TABLE {stage} AS SELECT "
                             + ", ".join(f"{d.q(c)} AS {pos[c]}" for c in cols) + f" FROM {table} LIMIT 0"))
            body.append(Step(f"INSERT INTO {stage} ({staged}) {strict_select(data, source, info.columns)}",
                             counts=True))
            body.append(Step(
                f"INSERT INTO {table} ({col_list}) SELECT {staged} FROM {stage} "
                f"QUALIFY row_number() OVER (PARTITION BY {', '.join(pos[c] for c in key)} ORDER BY rowid DESC) = 1 "
                f"ON CONFLICT ({column_list(d, key)}) {action}"))
            body.append(Step(f"DROP TABLE {stage}"))
        else:
            body.append(Step(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {col_list} FROM {table} WITH NO DATA"))
            body.extend(copy_steps(d, stage, cols, data, source, iam_role, info))
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
        body.extend(copy_steps(d, stage, cols, data, source, iam_role, info))
        sets = ", ".join(f"{d.q(c)} = VALUES({d.q(c)})" for c in (rest or key[:1]))
        body.append(Step(f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {stage} ON DUPLICATE KEY UPDATE {sets}"))
        body.append(Step(f"DROP TEMPORARY TABLE {stage}"))
    else:  # update_then_insert: Redshift's merge by column list
        # The stage numbers its rows as COPY loads them; a key repeated in the file keeps only its
        # highest number (the last row: IDENTITY follows the load order of a file read by one
        # slice, https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_TABLE_NEW.html#identity-clause).
        seq = d.q("_shipyard_seq")
        body.append(Step(f"CREATE TEMP TABLE {stage} (LIKE {table}, {seq} BIGINT IDENTITY(1, 1))"))
        body.extend(copy_steps(d, stage, cols, data, source, iam_role, info))
        body.append(Step(f"DELETE FROM {stage} WHERE {seq} NOT IN (SELECT MAX({seq}) FROM {stage} "
                         f"GROUP BY {column_list(d, key)})"))
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
