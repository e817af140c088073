"""Issue 17 (5): per-table CSV input options (delimiter, quote, null, header, encoding), kept
with the table and applied to every later load and upsert, on every engine."""

from __future__ import annotations

import json

import pytest

from shipyard.errors import InputError
from shipyard.propagator.datafile import DataFile
from shipyard.propagator.dialects import get_dialect
from shipyard.propagator.layout import parse_key
from shipyard.propagator.offline import validate
from shipyard.propagator.plan import TableInfo, plan_create, plan_load
from shipyard.propagator.specs import CreateSpec, InputOptions, parse_create, parse_update
from tests.propagator.conftest import ORDERS_SPEC

LATIN = {"delimiter": ";", "quote": "'", "null": "NA", "encoding": "latin-1"}


def test_options_are_kept_with_the_table_and_used_by_every_load_and_upsert(h):
    h.create(spec={**ORDERS_SPEC, "input_options": LATIN})
    # latin-1 bytes, ';' between fields, "'" quotes, NA for NULL; a quoted 'NA' is the text NA.
    body = "id;name;amount;city\n1;'Zoë; the 1st';10;Besançon\n2;'NA';NA;NA\n".encode("latin-1")
    o = h.run("orders", "input/load", "a.csv", body)
    assert o.status == "succeeded" and o.rows == 2, o
    assert h.dest.rows("orders") == [(1, "Zoë; the 1st", 10, "Besançon"), (2, "NA", None, None)]
    o = h.run("orders", "input/update", "u.csv", "id;city\n2;Orléans\n".encode("latin-1"))
    assert o.status == "succeeded", o
    assert h.dest.rows("orders", "id, city") == [(1, "Besançon"), (2, "Orléans")]


def test_an_options_update_replaces_them_for_later_files(h):
    h.create()
    o = h.run("orders", "schema/update", "opts.json",
              {"operation_type": "options", "input_options": {"delimiter": "\t", "header": False}})
    assert o.status == "succeeded", o
    # No header: the fields are the table's columns in table order.
    o = h.run("orders", "input/load", "a.csv", "1\tann\t10\tPune\n2\tbob\t\t\n")
    assert o.status == "succeeded" and o.rows == 2, o
    assert h.dest.rows("orders") == [(1, "ann", 10, "Pune"), (2, "bob", None, None)]
    # The old format is now a bad file, refused whole with its line.
    o = h.run("orders", "input/load", "b.csv", "id,name\n3,cy\n")
    assert o.status == "failed", o
    # A bad value is reported at its line of the file as written (line 2: there is no header).
    o = h.run("orders", "input/load", "c.csv", "3\tcy\t30\tGoa\n4\tdi\tx\tGoa\n")
    assert o.status == "failed" and h.report(o)["where"]["line"] == 2, o
    assert h.dest.rows("orders", "id") == [(1,), (2,)]


@pytest.mark.parametrize("options, field, words", [
    ({"delimiter": ";;"}, "input_options.delimiter", "one ASCII character"),
    ({"delimiter": "§"}, "input_options.delimiter", "one ASCII character"),
    ({"quote": "a"}, "input_options.quote", "not a letter"),
    ({"encoding": "cp1252"}, "input_options.encoding", "utf-8, latin-1"),
    ({"header": "yes"}, "input_options.header", "boolean"),
    ({"delimiter": "|", "quote": "|"}, "input_options", "different"),
    ({"null": "a,b"}, "input_options", "cannot contain the delimiter"),
    ({"delimter": ";"}, "input_options.delimter", "did you mean 'delimiter'"),
])
def test_bad_option_values_name_the_field(options, field, words):
    with pytest.raises(InputError) as e:
        parse_create(json.dumps({**ORDERS_SPEC, "input_options": options}).encode())
    assert e.value.details["where"]["field"] == field
    assert words in f"{e.value.message} {e.value.hint}"
    with pytest.raises(InputError) as e:
        parse_update(json.dumps({"operation_type": "options", "input_options": options}).encode())
    assert e.value.details["where"]["field"] == field


def _pk(dest: str, folder: str, name: str):
    return parse_key(f"destination={dest}/database=analytics/table_name=orders/{folder}/{name}")


SPEC = CreateSpec.model_validate({**ORDERS_SPEC, "dist_key": "id", "sort_key": ["id"]})
INFO = TableInfo(dict(SPEC.column_specification), ["id"])


def test_redshift_copy_gets_the_options_and_refuses_latin1():
    d = get_dialect("redshift")
    opts = InputOptions(delimiter="\t", quote="'", null="\\N".replace("\\", ""), header=False)
    data = DataFile("k", "csv", None, list(INFO.columns), opts)
    plan = plan_load(d, _pk("redshift", "input/load", "l.csv"), INFO, data, "s3://b/l.csv", etag="1")
    [copy] = [s.sql for s in plan.steps if s.kind == "copy"]
    assert "FORMAT AS CSV QUOTE AS '''' DELIMITER AS '\t' NULL AS 'N' TIMEFORMAT" in copy
    assert "IGNOREHEADER" not in copy and "EMPTYASNULL" not in copy
    plain = plan_load(d, _pk("redshift", "input/load", "l.csv"), INFO, DataFile("k", "csv", None, ["id"]),
                      "s3://b/l.csv", etag="1")
    assert "FORMAT AS CSV IGNOREHEADER 1 TIMEFORMAT 'auto' DATEFORMAT 'auto' EMPTYASNULL" in plain.render()
    with pytest.raises(InputError) as e:
        plan_create(d, _pk("redshift", "schema/create", "c.json"),
                    CreateSpec.model_validate({**SPEC.model_dump(), "input_options": {"encoding": "latin1"}}))
    assert e.value.details["where"]["field"] == "input_options.encoding"


def test_postgres_copy_and_create_plans_show_the_options():
    d = get_dialect("postgres")
    data = DataFile("k", "csv", None, ["id"], InputOptions(**LATIN))
    plan = plan_load(d, _pk("postgres", "input/load", "l.csv"), INFO, data, "x", etag="1")
    assert ("FROM STDIN WITH (FORMAT csv, DELIMITER ';', QUOTE '''', NULL 'NA', HEADER true, ENCODING 'LATIN1')"
            in plan.render())
    spec = CreateSpec.model_validate({**ORDERS_SPEC, "input_options": LATIN})
    rendered = plan_create(d, _pk("postgres", "schema/create", "c.json"), spec, etag="1").render()
    assert '"encoding":"latin-1"' in rendered and "_shipyard_table_options" in rendered


def test_validate_reads_data_files_with_the_specs_options(tmp_path):
    root = tmp_path / "destination=duckdb/database=sales/table_name=orders"
    (root / "schema/create").mkdir(parents=True)
    (root / "input/load").mkdir(parents=True)
    (root / "schema/create/orders.json").write_text(json.dumps({**ORDERS_SPEC, "input_options": LATIN}))
    (root / "input/load/a.csv").write_bytes("id;city\n1;Besançon\n".encode("latin-1"))
    (root / "input/load/b.csv").write_bytes(b"id;town\n1;x\n")
    checks = {c.path.rsplit("/", 1)[-1]: c for c in validate([str(p) for p in root.rglob("*.*")])}
    assert checks["orders.json"].ok and checks["a.csv"].ok, checks
    assert not checks["b.csv"].ok and "town" in checks["b.csv"].message


def test_redshift_options_plans_run_on_postgresql(pg_admin_url, pg_database):
    """The create's and the options update's statements on the options table, as Redshift gets them."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from shipyard.propagator.plan import plan_alter
    from shipyard.propagator.specs import SetOptions
    from tests.propagator.test_plan import _run_redshift_plan_on_pg

    d = get_dialect("redshift")
    spec = CreateSpec.model_validate({**SPEC.model_dump(), "input_options": {"delimiter": ";"}})
    with psycopg.connect(make_conninfo(pg_admin_url, dbname=pg_database)) as conn:
        _run_redshift_plan_on_pg(conn, plan_create(d, _pk("redshift", "schema/create", "c.json"), spec, etag="1"))
        stored = conn.execute("SELECT input_options FROM analytics._shipyard_table_options").fetchall()
        assert [InputOptions.model_validate_json(r[0]).delimiter for r in stored] == [";"]
        update = SetOptions.model_validate({"operation_type": "options", "input_options": {"null": "NA"}})
        _run_redshift_plan_on_pg(conn, plan_alter(d, _pk("redshift", "schema/update", "o.json"), update, INFO, etag="2"))
        stored = conn.execute("SELECT input_options FROM analytics._shipyard_table_options").fetchall()
        assert [InputOptions.model_validate_json(r[0]) for r in stored] == [InputOptions(null="NA")]


def test_stored_options_that_no_longer_validate_leave_the_file_waiting(h):
    from shipyard.errors import ConfigError

    h.create(spec={**ORDERS_SPEC, "input_options": {"delimiter": ";"}})
    _execute(h.dest, 'UPDATE _shipyard_table_options SET input_options = \'{"delimiter": "abc"}\'')
    key = h.put("orders", "input/load", "a.csv", "id;name\n1;ann\n")
    with pytest.raises(ConfigError, match="stored input options of .*orders"):
        h.p.process_key(key)
    assert h.store.exists(key)


def _execute(dest, sql: str) -> None:
    """A write through the engine's own driver, committed."""
    if dest.kind == "duckdb":
        dest.query(sql)  # autocommit
    elif dest.kind == "postgres":
        import psycopg
        from psycopg.conninfo import make_conninfo

        with psycopg.connect(make_conninfo(dest.url, dbname=dest.db), autocommit=True) as c:
            c.execute(sql)
    else:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=dest.db, autocommit=True)
        try:
            conn.cursor().execute(sql)
        finally:
            conn.close()


def test_a_create_without_options_forgets_stored_ones_without_delete(pg_admin_url, pg_database):
    """The options row is written by one upsert, never a DELETE (the loader role has none), and a
    spec without options stores `null`, read back as the defaults."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from shipyard.propagator.ledger import options_ddl, options_sql
    from shipyard.propagator.plan.model import options_steps

    d = get_dialect("postgres")
    pk = _pk("postgres", "schema/create", "c.json")
    with psycopg.connect(make_conninfo(pg_admin_url, dbname=pg_database), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA analytics")
        conn.execute(options_ddl(d, "analytics"))

        def store(options):
            for step in options_steps(d, pk, options):
                assert not step.sql.lstrip().upper().startswith("DELETE")
                conn.execute(step.sql, step.params)
            return [r[0] for r in conn.execute(options_sql(d, "analytics"), (pk.table,)).fetchall()]

        assert [InputOptions.model_validate_json(v) for v in store(InputOptions(**LATIN))] == [InputOptions(**LATIN)]
        assert store(None) == ["null"]  # one row, forgotten
        assert [InputOptions.model_validate_json(v) for v in store(InputOptions(delimiter="|"))] == \
            [InputOptions(delimiter="|")]


def test_two_creates_at_once_do_not_lock_each_other_out_on_mariadb(mysql_url, mysql_database):
    """Two tables created at the same time in one database each write their options row, in
    transactions that overlap. An UPDATE of a missing row followed by an INSERT took a gap lock
    in each and then waited on (or deadlocked with) the other's INSERT: the CI run of stop 21
    lost a create to it. The upsert takes no gap lock, so neither waits."""
    import pymysql

    from shipyard.propagator.ledger import options_ddl, options_sql
    from shipyard.propagator.plan.model import options_steps

    d = get_dialect("mysql")

    def connect():
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=mysql_database)
        conn.cursor().execute("SET SESSION innodb_lock_wait_timeout = 3")  # a wait fails the test, fast
        return conn

    setup = connect()
    setup.cursor().execute(options_ddl(d, mysql_database))
    setup.commit()
    one, two = connect(), connect()
    try:
        for conn in (one, two):
            conn.begin()
        for conn, table in ((one, "a"), (two, "b")):
            pk = parse_key(f"destination=mysql/database={mysql_database}/table_name={table}/schema/create/c.json")
            for step in options_steps(d, pk, InputOptions(delimiter="|") if table == "a" else None):
                conn.cursor().execute(step.sql, step.params)
        one.commit()
        two.commit()
        cur = setup.cursor()
        cur.execute(options_sql(d, mysql_database), ("a",))
        assert InputOptions.model_validate_json(cur.fetchone()[0]) == InputOptions(delimiter="|")
        cur.execute(options_sql(d, mysql_database), ("b",))
        assert cur.fetchone()[0] == "null"
        # and written again: the upsert replaces, it does not add a row
        pk = parse_key(f"destination=mysql/database={mysql_database}/table_name=a/schema/create/c.json")
        for step in options_steps(d, pk, None):
            cur.execute(step.sql, step.params)
        setup.commit()
        cur.execute(f"SELECT input_options FROM `{mysql_database}`.`_shipyard_table_options` WHERE table_name = 'a'")
        assert [r[0] for r in cur.fetchall()] == ["null"]
    finally:
        for conn in (one, two, setup):
            conn.close()


def test_deadlocks_are_marked_to_run_again_and_other_transient_errors_are_not():
    import pymysql

    from shipyard.propagator.engines.mysql import map_mysql_error

    dead = map_mysql_error(pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"), "creating t")
    wait = map_mysql_error(pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), "creating t")
    assert dead.retryable and dead.details.get("conflict") is True
    assert wait.retryable and not wait.details.get("conflict")
