"""Every failure path of issue 2, on every engine: the file ends in failed/ with a report that
says what, where and how to fix; the table is untouched; the runner carries on."""

from __future__ import annotations

import json

import pytest

from shipyard.errors import ConfigError, TransientError
from shipyard.propagator.ledger import LEDGER_TABLE
from shipyard.settings import get_settings
from tests.helpers import free_port
from tests.propagator.conftest import ORDERS_SPEC, Dest, Harness


def _failed(h, o, *, what: str, where: dict | None = None):
    assert o.status == "failed", o
    assert o.moved_to and o.moved_to.startswith(o.key.split("/schema/")[0].split("/input/")[0]) and "/failed/" in o.moved_to
    assert h.store.exists(o.moved_to) and not h.store.exists(o.key)
    report = h.report(o)
    assert what.lower() in report["what"].lower(), report
    assert report["how_to_fix"], report
    if where is not None:
        for k, v in where.items():
            assert (report["where"] or {}).get(k) == v, report
    notice = h.notes.notices[-1]
    assert notice.level == "failure" and o.moved_to in notice.message
    assert notice.attachment is not None and notice.attachment.key == o.moved_to + ".error.json"
    return report


def test_update_without_primary_key(h):
    h.create("events", {"column_specification": {"id": "INTEGER", "v": "INTEGER"}})
    o = h.run("events", "input/update", "u.csv", "id,v\n1,2\n")
    r = _failed(h, o, what="no primary key")
    assert "input/load" in r["how_to_fix"]


def test_unknown_column_is_named_with_its_position(h):
    h.create()
    o = h.run("orders", "input/load", "a.csv", "id,nmae,amount\n1,x,2\n")
    r = _failed(h, o, what="column 'nmae'", where={"line": 1, "column": 2})
    assert "did you mean 'name'" in r["how_to_fix"]
    assert h.dest.rows("orders") == []


@pytest.mark.parametrize("folder", ["input/load", "input/update"])
def test_bad_value_in_row_5000_loads_nothing(h, folder):
    h.create()
    rows = [f"{i},n{i},{i}" for i in range(1, 5001)]
    rows[4999] = "5000,n5000,not-a-number"
    o = h.run("orders", folder, "big.csv", "id,name,amount\n" + "\n".join(rows) + "\n")
    # Row 5,000 is line 5,001 (the header is line 1); amount is the file's 3rd column.
    _failed(h, o, what="", where={"line": 5001, "column": 3, "column_name": "amount"})
    assert h.dest.rows("orders") == []
    assert h.dest.query(f"SELECT count(*) FROM {LEDGER_TABLE} WHERE operation <> 'create' "
                        "AND status = 'succeeded'") == [(0,)]
    # the failed attempt is in the ledger, with where the file went
    assert h.dest.query(f"SELECT status, archive_key FROM {LEDGER_TABLE} WHERE operation <> 'create'") == \
        [("failed", o.moved_to)]


@pytest.mark.parametrize("body,line", [
    ('id,name\n1,"unterminated\n2,b\n', None),  # a quote that never closes
    ("id,name\n1,a\n2,b,extra\n", 3),           # a row with one field too many
    ("id,name\n1,a\n2\n", 3),                   # a row with one field too few
])
def test_malformed_csv(h, body, line):
    h.create()
    o = h.run("orders", "input/load", "m.csv", body)
    r = _failed(h, o, what="")
    assert r["where"] and r["where"]["line"] >= 2
    if line:
        assert r["where"]["line"] == line
    assert h.dest.rows("orders") == []


def test_empty_file(h):
    h.create()
    _failed(h, h.run("orders", "input/load", "e.csv", b""), what="empty", where={"line": 1})


def test_header_only_file(h):
    h.create()
    _failed(h, h.run("orders", "input/load", "h.csv", "id,name\n"), what="no data rows", where={"line": 2})


def test_non_utf8_file(h):
    h.create()
    o = h.run("orders", "input/load", "latin1.csv", "id,name\n1,ok\n2,caf\xe9\n".encode("latin-1"))
    r = _failed(h, o, what="")
    assert "utf" in (r["what"] + r["how_to_fix"]).lower()
    assert r["where"]["line"] == 3
    assert h.dest.rows("orders") == []


def test_non_utf8_header(h):
    h.create()
    o = h.run("orders", "input/load", "latin1.csv", "id,n\xe4me\n1,a\n".encode("latin-1"))
    _failed(h, o, what="not UTF-8", where={"line": 1})


def test_invalid_spec_json_reports_line_and_column(h_offline):
    h = h_offline
    o = h.run("orders", "schema/create", "bad.json", '{\n  "column_specification": {"id": "INTEGER",}\n}')
    _failed(h, o, what="not valid JSON", where={"line": 2, "column": 44})


def test_invalid_spec_fields(h_offline):
    h = h_offline
    o = h.run("orders", "schema/create", "bad.json", {"column_specification": {"id": "INTEGER"}, "primary_key": ["idd"]})
    _failed(h, o, what="primary_key names 'idd'")
    o = h.run("orders", "schema/create", "bad2.json", {"columns": {"id": "INTEGER"}})
    r = _failed(h, o, what="unknown field 'columns'")
    assert "did you mean 'column_specification'" in r["how_to_fix"]


def test_unknown_operation_type(h):
    h.create()
    o = h.run("orders", "schema/update", "u.json", {"column_specification": ["city"], "operation_type": "rename"})
    r = _failed(h, o, what="unknown operation_type 'rename'", where={"field": "operation_type"})
    assert "add" in r["how_to_fix"] and "drop" in r["how_to_fix"]


def test_dropping_a_missing_column(h):
    h.create()
    o = h.run("orders", "schema/update", "d.json", {"column_specification": ["city", "ctiy2"], "operation_type": "drop"})
    _failed(h, o, what="no such column")
    # all or nothing: city is still there
    assert "city" in h.dest.columns("orders")


def test_add_existing_column_changes_nothing(h):
    h.create()
    o = h.run("orders", "schema/update", "a.json",
              {"column_specification": {"zip": "INTEGER", "city": "VARCHAR"}, "operation_type": "add"})
    _failed(h, o, what="already exists")
    assert h.dest.columns("orders") == ["id", "name", "amount", "city"]


@pytest.mark.parametrize("bad", ['or"ders', "or;ders", "or ders", "drop table x;--"])
def test_table_identifier_with_quote_semicolon_space(h_offline, bad):
    h = h_offline
    key = f"destination={h.dest.name}/database={h.dest.db}/table_name={bad}/schema/create/t.json"
    h.store.put(key, json.dumps({"column_specification": {"id": "INTEGER"}}).encode())
    o = h.p.process_key(key)
    _failed(h, o, what="invalid table name")


@pytest.mark.parametrize("bad", ['na"me', "na;me", "na me"])
def test_column_identifier_in_a_spec_with_quote_semicolon_space(h_offline, bad):
    o = h_offline.run("orders", "schema/create", "c.json", {"column_specification": {"id": "INTEGER", bad: "INTEGER"}})
    _failed(h_offline, o, what="invalid column name")


@pytest.mark.parametrize("dest", ["duckdb"], indirect=True)  # the header is checked before the load, by us
@pytest.mark.parametrize("bad", ['na"me', "na;me", "na me"])
def test_column_identifier_in_a_header_with_quote_semicolon_space(h, bad):
    h.create()
    o = h.run("orders", "input/load", "c.csv", f'id,"{bad}"\n1,2\n'.replace('""', '"'))
    _failed(h, o, what="invalid column name", where={"line": 1, "column": 2})


@pytest.mark.parametrize("typ", ["INTEGER; DROP TABLE x", "INTEGER DEFAULT 1", "VARCHAR(10)) --", "NOTATYPE"])
def test_type_strings_cannot_carry_sql(h_offline, typ):
    o = h_offline.run("orders", "schema/create", "t.json", {"column_specification": {"id": typ}})
    _failed(h_offline, o, what="is not a")


def test_key_with_dotdot_is_refused_and_nothing_moves(h_offline):
    h = h_offline
    key = f"destination={h.dest.name}/database={h.dest.db}/table_name=orders/input/load/../../../../x.csv"
    o = h.p.process_key(key)
    assert o.status == "skipped" and "'..'" in o.reason
    assert h.notes.notices == []


def test_keys_outside_the_layout_or_done_are_skipped(h_offline):
    h = h_offline
    for key in ["readme.txt", f"destination={h.dest.name}/database=x/table_name=t/input/other/a.csv",
                f"destination={h.dest.name}/database=x/table_name=t/input/load/a.txt"]:
        h.store.put(key, b"x")
        o = h.p.process_key(key)
        assert o.status == "skipped" and o.reason, o
        assert h.store.exists(key)
    done = h.dest.key("orders", "succeeded", "a.csv")
    h.store.put(done, b"id\n1\n")
    assert h.p.process_key(done).status == "skipped"
    assert h.p.process_pending() == []


def test_load_into_missing_table(h):
    o = h.run("nothere", "input/load", "a.csv", "id\n1\n")
    _failed(h, o, what="does not exist")


def test_create_existing_table(h):
    h.create()
    o = h.run("orders", "schema/create", "again.json", {"column_specification": {"id": "INTEGER"}})
    _failed(h, o, what="already exists")


@pytest.mark.parametrize("env", [
    {},  # destination=warehouse9 is not configured at all
    {"SHIPYARD_DESTINATIONS__WAREHOUSE9__TYPE": "postgres"},  # no url
    {"SHIPYARD_DESTINATIONS__WAREHOUSE9__TYPE": "oracle", "SHIPYARD_DESTINATIONS__WAREHOUSE9__URL": "x"},
    {"SHIPYARD_DESTINATIONS__WAREHOUSE9__TYPE": "mysql", "SHIPYARD_DESTINATIONS__WAREHOUSE9__URL": "http://x/"},
])
def test_a_misconfigured_destination_keeps_the_file_pending(h_offline, monkeypatch, env):
    """Issue 10: the destination's settings are not the file's fault: nothing moves to failed/,
    the file is retried once the settings are fixed."""
    h = h_offline
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    h.p.settings = get_settings(fresh=True)
    key = f"destination=warehouse9/database={h.dest.db}/table_name=orders/input/load/a.csv"
    h.store.put(key, b"id\n1\n")
    with pytest.raises(ConfigError):
        h.p.process_key(key)
    [o] = h.p.process_pending()
    assert o.status == "skipped" and o.reason.startswith("waiting for the destination's configuration"), o
    assert h.store.exists(key) and h.notes.notices == []
    assert not any("/failed/" in i.key for i in h.store.list(""))


def test_an_unknown_role_on_postgres_keeps_the_file_pending(bucket, monkeypatch, pg_database):
    """A wrong user or password is the destination's problem (SQLSTATE 28xxx), not the file's."""
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__POSTGRES__URL", "postgresql://no_such_role@127.0.0.1:5432/postgres")
    get_settings(fresh=True)
    h = Harness(bucket, Dest("postgres", "postgres", pg_database))
    key = h.put("orders", "schema/create", "o.json", ORDERS_SPEC)
    with pytest.raises(TransientError, match="connecting to destination"):
        h.p.process_key(key)
    assert h.store.exists(key) and h.notes.notices == []
    h.close()


def test_a_bad_file_does_not_stop_the_others(h):
    h.create()
    h.put("orders", "input/load", "1.csv", "id\n1\n")
    h.put("orders", "input/load", "2.csv", "id\nbad\n")
    h.put("orders", "input/load", "3.csv", "id\n3\n")
    outs = h.p.process_pending()
    assert [o.status for o in outs] == ["succeeded", "failed", "succeeded"]
    assert h.dest.rows("orders", "id") == [(1,), (3,)]


def test_redshift_create_needs_dist_and_sort_keys_before_any_io(bucket, monkeypatch):
    # The destination's server does not exist: the rule is enforced before connecting.
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__REDSHIFT__URL", f"postgresql://u@127.0.0.1:{free_port()}/dev")
    get_settings(fresh=True)
    h = Harness(bucket, Dest("redshift", "redshift", "analytics"))
    o = h.run("orders", "schema/create", "o.json", {"column_specification": {"id": "INTEGER"}, "primary_key": ["id"]})
    r = _failed(h, o, what="needs dist_key and sort_key")
    assert "dist_key" in r["how_to_fix"] and "sort_key" in r["how_to_fix"]


def test_duplicate_header_column(h):
    h.create()
    o = h.run("orders", "input/load", "d.csv", "id,name,ID\n1,a,2\n")
    _failed(h, o, what="appears twice", where={"line": 1, "column": 3})


def test_truncated_gzip_fails_the_file(h):
    import gzip

    h.create()
    data = gzip.compress(b"id\n" + b"".join(b"%d\n" % i for i in range(200000)))
    o = h.run("orders", "input/load", "t.csv.gz", data[: len(data) // 2])
    _failed(h, o, what="")
    assert h.dest.rows("orders", "id") == []
