"""Plans without a database: golden SQL per dialect, every statement parsed by sqlglot; and
Redshift's plans run on PostgreSQL with only the Redshift-only clauses swapped."""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from shipyard.errors import InputError
from shipyard.propagator.dialects import DIALECTS, get_dialect
from shipyard.propagator.datafile import DataFile
from shipyard.propagator.layout import parse_key
from shipyard.propagator.ledger import LEDGER_TABLE, ROWS, SECONDS
from shipyard.propagator.plan import TableInfo, plan_alter, plan_create, plan_load, plan_upsert
from shipyard.propagator.specs import AddColumns, CreateSpec, DropColumns

SPEC = CreateSpec.model_validate({
    "column_specification": {"id": "INTEGER", "customer": "VARCHAR(100)", "amount": "DECIMAL(12,2)",
                             "ordered_at": "TIMESTAMP"},
    "primary_key": ["id"], "dist_key": "customer", "sort_key": ["ordered_at"]})
INFO = TableInfo({"id": "INTEGER", "customer": "VARCHAR(100)", "amount": "DECIMAL(12,2)", "ordered_at": "TIMESTAMP"},
                 ["id"])


def _key(dest: str, folder: str, name: str) -> object:
    return parse_key(f"destination={dest}/database=analytics/table_name=orders/{folder}/{name}")


def _all_plans(dname: str):
    d = get_dialect(dname)
    data = DataFile("k", "csv", None, ["id", "amount"])
    yield plan_create(d, _key(dname, "schema/create", "c.json"), SPEC, etag="e")
    yield plan_alter(d, _key(dname, "schema/update", "a.json"),
                     AddColumns.model_validate({"operation_type": "add", "column_specification": {"city": "VARCHAR(30)",
                                                                                                  "zip": "INT"}}), INFO)
    yield plan_alter(d, _key(dname, "schema/update", "d.json"),
                     DropColumns.model_validate({"operation_type": "drop", "column_specification": ["customer"]}), INFO)
    yield plan_load(d, _key(dname, "input/load", "l.csv"), INFO, data, "s3://b/l.csv", iam_role="arn:aws:iam::1:role/r")
    yield plan_upsert(d, _key(dname, "input/update", "u.csv"), INFO, data, "s3://b/u.csv", iam_role="arn:aws:iam::1:role/r")


# Statements sqlglot does not model (it falls back to a raw Command or refuses): checked by the
# golden text below instead. Everything else must parse into a real expression.
_UNMODELLED = re.compile(r"^(LOCK |CREATE TEMP TABLE .* ON COMMIT DROP|LOAD DATA )")


@pytest.mark.parametrize("dname", sorted({c.name for c in DIALECTS.values()}))
def test_every_statement_parses_in_its_dialect(dname):
    d = get_dialect(dname)
    n = 0
    for plan in _all_plans(dname):
        for step in plan.statements() + [f for s in plan.steps for f in s.fallback]:
            n += 1
            if _UNMODELLED.match(step.sql):
                continue
            sql = step.sql
            for prm in step.params:  # driver placeholders -> literals, as `plan` prints them
                sql = sql.replace(d.param, "0" if prm is ROWS or prm is SECONDS else d.literal(prm), 1)
            parsed = sqlglot.parse_one(sql, read=d.sqlglot)
            assert not isinstance(parsed, exp.Command), sql
    assert n >= 25


def test_redshift_golden_sql():
    plans = list(_all_plans("redshift"))
    create, add, drop, load, upsert = [[s.sql for s in p.steps if s.kind not in ("check", "ledger")] for p in plans]
    assert create == [
        'LOCK "analytics"."_shipyard_ledger"',
        'CREATE TABLE "analytics"."orders" ("id" INTEGER NOT NULL, "customer" VARCHAR(100), "amount" DECIMAL(12, 2), '
        '"ordered_at" TIMESTAMP, PRIMARY KEY ("id")) DISTKEY("customer") COMPOUND SORTKEY("ordered_at")',
        # no input_options: any stored for the name are forgotten (set to null, without DELETE)
        'UPDATE "analytics"."_shipyard_table_options" SET input_options = %s WHERE table_name = %s',
        'INSERT INTO "analytics"."_shipyard_table_options" (table_name, input_options) SELECT %s, %s '
        'WHERE NOT EXISTS (SELECT 1 FROM "analytics"."_shipyard_table_options" WHERE table_name = %s)',
    ]
    # Redshift: one column per ALTER TABLE.
    assert add == ['LOCK "analytics"."orders", "analytics"."_shipyard_ledger"',
                   'ALTER TABLE "analytics"."orders" ADD COLUMN "city" VARCHAR(30)',
                   'ALTER TABLE "analytics"."orders" ADD COLUMN "zip" INTEGER']
    assert drop[1:] == ['ALTER TABLE "analytics"."orders" DROP COLUMN "customer"']
    assert load[1:] == [
        'COPY "analytics"."orders" ("id", "amount") FROM \'s3://b/l.csv\' IAM_ROLE \'arn:aws:iam::1:role/r\' '
        "FORMAT AS CSV IGNOREHEADER 1 TIMEFORMAT 'auto' DATEFORMAT 'auto' EMPTYASNULL"]
    assert upsert[1:] == [
        'CREATE TEMP TABLE "_shipyard_stage_orders" (LIKE "analytics"."orders", "_shipyard_seq" BIGINT IDENTITY(1, 1))',
        'COPY "_shipyard_stage_orders" ("id", "amount") FROM \'s3://b/u.csv\' IAM_ROLE \'arn:aws:iam::1:role/r\' '
        "FORMAT AS CSV IGNOREHEADER 1 TIMEFORMAT 'auto' DATEFORMAT 'auto' EMPTYASNULL",
        # a key repeated in the file: only its last row stays in the stage (issue 10)
        'DELETE FROM "_shipyard_stage_orders" WHERE "_shipyard_seq" NOT IN (SELECT MAX("_shipyard_seq") '
        'FROM "_shipyard_stage_orders" GROUP BY "id")',
        'UPDATE "analytics"."orders" SET "amount" = "_shipyard_stage_orders"."amount" FROM "_shipyard_stage_orders" '
        'WHERE "analytics"."orders"."id" = "_shipyard_stage_orders"."id"',
        'DELETE FROM "_shipyard_stage_orders" USING "analytics"."orders" '
        'WHERE "analytics"."orders"."id" = "_shipyard_stage_orders"."id"',
        'INSERT INTO "analytics"."orders" ("id", "amount") SELECT "id", "amount" FROM "_shipyard_stage_orders"',
        'DROP TABLE "_shipyard_stage_orders"',
    ]
    # the ledger row goes in the same transaction, after the data
    assert plans[4].steps[-1].kind == "ledger" and ROWS in plans[4].steps[-1].params and SECONDS in plans[4].steps[-1].params


def test_postgres_and_mysql_golden_sql():
    pg = [s.sql for s in list(_all_plans("postgres"))[4].steps]
    assert pg[0] == "SELECT pg_advisory_xact_lock(%s)"
    assert pg[3] == 'COPY "_shipyard_stage_orders" ("id", "amount") FROM STDIN WITH (FORMAT csv, HEADER true, ENCODING \'UTF8\')'
    assert pg[4] == ('INSERT INTO "orders" ("id", "amount") SELECT "id", "amount" FROM "_shipyard_stage_orders" '
                     'ON CONFLICT ("id") DO UPDATE SET "amount" = EXCLUDED."amount"')
    my = list(_all_plans("mysql"))
    assert [s.sql for s in my[1].steps if s.kind == "sql" and not s.finally_] == [
        "ALTER TABLE `orders` ADD COLUMN `city` VARCHAR(30), ADD COLUMN `zip` INT"]  # one atomic ALTER
    up = [s.sql for s in my[4].steps]
    assert up[0] == "SELECT GET_LOCK(%s, 60)" and up[-1] == "SELECT RELEASE_LOCK(%s)"
    assert up[4] == ("INSERT INTO `orders` (`id`, `amount`) SELECT `id`, `amount` FROM `_shipyard_stage_orders` "
                     "ON DUPLICATE KEY UPDATE `amount` = VALUES(`amount`)")
    assert "(`id`, `amount`)" in up[3] and up[3].startswith("LOAD DATA LOCAL INFILE 's3://b/u.csv' INTO TABLE")


def test_sort_key_is_an_index_where_there_is_no_sort_key():
    pk = _key("postgres", "schema/create", "c.json")
    for dname in ("postgres", "duckdb", "mysql"):
        sqls = [s.sql for s in plan_create(get_dialect(dname), pk, SPEC).steps]
        assert any(s.startswith("CREATE INDEX") and "ordered_at" in s for s in sqls), dname
    assert not any("CREATE INDEX" in s.sql for s in plan_create(get_dialect("redshift"), pk, SPEC).steps)


def test_redshift_refuses_a_create_without_dist_and_sort_keys():
    spec = CreateSpec.model_validate({"column_specification": {"id": "INTEGER"}, "sort_key": ["id"]})
    with pytest.raises(InputError, match="dist_key"):
        plan_create(get_dialect("redshift"), _key("redshift", "schema/create", "c.json"), spec)
    # other engines take it
    plan_create(get_dialect("postgres"), _key("postgres", "schema/create", "c.json"), spec)


@pytest.mark.parametrize("dname", ["postgres", "duckdb", "mysql", "redshift"])
def test_types_are_reparsed_per_dialect(dname):
    d = get_dialect(dname)
    assert d.type_sql("numeric(12, 2)") in ("DECIMAL(12, 2)", "NUMERIC(12, 2)")
    for bad in ["INT; DROP TABLE x", "INT DEFAULT 1", "INT NOT NULL", "VARCHAR(10)) --", "X'00'", "", "blob_of_doom"]:
        with pytest.raises(InputError):
            d.type_sql(bad, "c")


def test_upsert_plan_refuses_missing_key_columns_and_unknown_columns():
    d = get_dialect("postgres")
    pk = _key("postgres", "input/update", "u.csv")
    with pytest.raises(InputError, match="lacks primary key"):
        plan_upsert(d, pk, INFO, DataFile("k", "csv", None, ["amount"]), "x")
    with pytest.raises(InputError, match="does not have") as e:
        plan_load(d, pk, INFO, DataFile("k", "csv", None, ["id", "amonut"]), "x")
    assert "did you mean 'amount'" in e.value.hint
    with pytest.raises(InputError, match="no primary key"):
        plan_upsert(d, pk, TableInfo({"id": "INT"}), DataFile("k", "csv", None, ["id"]), "x")


# -- Redshift's plans on PostgreSQL -------------------------------------------------------------

def _on_postgres(sql: str) -> str:
    """The Redshift-only clauses swapped for PostgreSQL's (nothing else changes):
    DISTKEY(...) / COMPOUND SORTKEY(...) dropped; COPY ... FROM 's3://' IAM_ROLE ... becomes
    COPY ... FROM STDIN (FORMAT csv, HEADER true) fed with the same file (for a Parquet COPY, which
    maps by position, a CSV of the same columns in the same order); IDENTITY(1, 1) becomes
    GENERATED BY DEFAULT AS IDENTITY."""
    sql = re.sub(r" DISTKEY\([^)]*\) COMPOUND SORTKEY\([^)]*\)$", "", sql)
    sql = sql.replace(" BIGINT IDENTITY(1, 1)", " BIGINT GENERATED BY DEFAULT AS IDENTITY")
    m = re.match(r"^(COPY .*?) FROM 's3://[^']*' IAM_ROLE .*$", sql)
    if m:
        return m.group(1) + " FROM STDIN WITH (FORMAT csv, HEADER true)"
    return sql


def _run_redshift_plan_on_pg(conn, plan, csv_bytes: bytes | None = None) -> None:
    d = plan.dialect
    with conn.transaction():
        for step in plan.setup:
            conn.execute(step.sql)
    with conn.transaction():
        cur = conn.cursor()
        for step in plan.steps:
            sql = _on_postgres(step.sql)
            params = tuple(0 if p is ROWS or p is SECONDS else p for p in step.params)
            if sql.endswith("FROM STDIN WITH (FORMAT csv, HEADER true)"):
                with cur.copy(sql) as cp:
                    cp.write(csv_bytes)
            elif step.kind == "check":
                assert cur.execute(sql, params).fetchone() is None
            else:
                cur.execute(sql, params or None)


def test_redshift_plans_run_on_postgresql(pg_admin_url, pg_database):
    import psycopg
    from psycopg.conninfo import make_conninfo

    d = get_dialect("redshift")
    with psycopg.connect(make_conninfo(pg_admin_url, dbname=pg_database)) as conn:
        _run_redshift_plan_on_pg(conn, plan_create(d, _key("redshift", "schema/create", "c.json"), SPEC, etag="1"))
        _run_redshift_plan_on_pg(conn, plan_load(
            d, _key("redshift", "input/load", "l.csv"), INFO, DataFile("k", "csv", None, ["id", "customer", "amount"]),
            "s3://b/l.csv", etag="2"), b"id,customer,amount\n1,ann,10\n2,bob,20\n")
        _run_redshift_plan_on_pg(conn, plan_upsert(
            d, _key("redshift", "input/update", "u.csv"), INFO, DataFile("k", "csv", None, ["id", "amount"]),
            "s3://b/u.csv", etag="3"), b"id,amount\n2,21\n3,30\n")
        _run_redshift_plan_on_pg(conn, plan_alter(
            d, _key("redshift", "schema/update", "a.json"),
            AddColumns.model_validate({"operation_type": "add", "column_specification": {"city": "VARCHAR(30)"}}), INFO,
            etag="4"))
        rows = conn.execute('SELECT id, customer, amount::int, city FROM analytics.orders ORDER BY id').fetchall()
        assert rows == [(1, "ann", 10, None), (2, "bob", 21, None), (3, None, 30, None)]
        assert conn.execute(f"SELECT count(*) FROM analytics.{LEDGER_TABLE}").fetchone() == (4,)


def test_redshift_upsert_keeps_one_row_per_repeated_key_on_postgresql(pg_admin_url, pg_database):
    """Issue 10: a new key repeated in one file was inserted twice by the Redshift merge."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    d = get_dialect("redshift")
    with psycopg.connect(make_conninfo(pg_admin_url, dbname=pg_database)) as conn:
        _run_redshift_plan_on_pg(conn, plan_create(d, _key("redshift", "schema/create", "c.json"), SPEC, etag="1"))
        _run_redshift_plan_on_pg(conn, plan_upsert(
            d, _key("redshift", "input/update", "u.csv"), INFO, DataFile("k", "csv", None, ["id", "amount"]),
            "s3://b/u.csv", etag="2"), b"id,amount\n7,1\n8,5\n7,2\n7,3\n")
        rows = conn.execute("SELECT id, amount::int FROM analytics.orders ORDER BY id").fetchall()
    assert rows == [(7, 3), (8, 5)]  # one row per key, the last one


def test_redshift_parquet_loads_through_a_stage_in_file_order(pg_admin_url, pg_database):
    """Issue 10: COPY ... FORMAT AS PARQUET maps columns by position and takes no CSV options."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    d = get_dialect("redshift")
    # the file's columns are in another order than the table's
    data = DataFile("k", "parquet", None, ["amount", "customer", "id"])
    load = plan_load(d, _key("redshift", "input/load", "l.parquet"), INFO, data, "s3://b/l.parquet", etag="2")
    copies = [s.sql for s in load.steps if s.kind == "copy"]
    assert len(copies) == 1 and copies[0].endswith("FORMAT AS PARQUET") and "TIMEFORMAT" not in copies[0]
    assert "(" not in copies[0].split(" FROM ")[0]  # no column list: Redshift refuses one for Parquet
    with psycopg.connect(make_conninfo(pg_admin_url, dbname=pg_database)) as conn:
        _run_redshift_plan_on_pg(conn, plan_create(d, _key("redshift", "schema/create", "c.json"), SPEC, etag="1"))
        _run_redshift_plan_on_pg(conn, load, b"amount,customer,id\n10,ann,1\n20,bob,2\n")
        _run_redshift_plan_on_pg(conn, plan_upsert(
            d, _key("redshift", "input/update", "u.parquet"), INFO, DataFile("k", "parquet", None, ["amount", "id"]),
            "s3://b/u.parquet", etag="3"), b"amount,id\n21,2\n30,3\n")
        rows = conn.execute("SELECT id, customer, amount::int FROM analytics.orders ORDER BY id").fetchall()
    assert rows == [(1, "ann", 10), (2, "bob", 21), (3, None, 30)]


def test_sort_key_index_names_are_short_hashed_and_never_a_table_name():
    """Issue 10: "<table>__sort_key" cut at 63 bytes collided with a table of that name."""
    long = "t" * 63
    names = set()
    for table in (long, long[:-1], "orders"):
        pk = parse_key(f"destination=postgres/database=analytics/table_name={table}/schema/create/c.json")
        [idx] = [s.sql for s in plan_create(get_dialect("postgres"), pk, SPEC).steps if s.sql.startswith("CREATE INDEX")]
        name = idx.split('"')[1]
        assert name.startswith("_shipyard_sort_") and len(name) <= 63
        names.add(name)
    assert len(names) == 3
