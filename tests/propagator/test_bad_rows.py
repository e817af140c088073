"""Issue 17 (5): a table's `max_bad_rows`. Up to that many bad rows are set aside in
failed/<name>.rejects.csv with their line and reason, the rest load in the same transaction, and
the notice counts them; more fail the whole file as before. On every engine that runs here;
Redshift (MAXERROR + STL_LOAD_ERRORS) by its plan."""

from __future__ import annotations

import csv
import io
import json

import pytest

from shipyard.propagator.dialects import get_dialect
from shipyard.propagator.layout import parse_key
from shipyard.propagator.plan import TableInfo, plan_load, plan_upsert
from shipyard.propagator.datafile import DataFile
from shipyard.propagator.screen import value_check
from shipyard.propagator.specs import InputOptions

SPEC = {"column_specification": {"id": "INTEGER", "name": "VARCHAR(5)", "amount": "DECIMAL(6,2)", "ok": "BOOLEAN"},
        "primary_key": ["id"], "input_options": {"max_bad_rows": 3}}
GOOD_AND_BAD = (
    "id,name,amount,ok\n"      # line 1
    "1,ann,1.50,true\n"        # 2
    "2,1.5,2,false\n"          # 3: a number as text is fine in a VARCHAR
    "3.5,bob,3,true\n"         # 4: bad: 3.5 is not an INTEGER (DuckDB's cast would round it to 4)
    '4,"tw\no",4,f\n'          # 5-6: a quoted line break: the next rows' lines move by one
    "5,cy,5\n"                 # 7: bad: a short row
    "6,toolongname,6,t\n"      # 8: bad: longer than VARCHAR(5)
    '7,"",7.25,0\n'            # 9: an empty string, not NULL
    "8,,8,1\n"                 # 10: NULL
)


def _rejects(h, outcome) -> list[dict]:
    with h.store.open(outcome.rejects) as f:
        return list(csv.DictReader(io.StringIO(f.read().decode())))


def test_bad_rows_are_set_aside_with_their_line_and_the_rest_load(h):
    h.create("t", SPEC)
    o = h.run("t", "input/load", "a.csv", GOOD_AND_BAD)
    assert o.status == "succeeded", o
    # DuckDB keeps no VARCHAR length (https://duckdb.org/docs/stable/sql/data_types/text): the long
    # name fits there, as it would in any load into that table.
    lengths = h.dest.kind != "duckdb"
    assert (o.rows, o.rejected) == ((5, 3) if lengths else (6, 2))
    assert o.rejects.endswith("/failed/a.csv.rejects.csv")
    got = h.dest.rows("t", "id, name, amount, ok")
    assert [r[:3] for r in got] == [(1, "ann", 1.5), (2, "1.5", 2), (4, "tw\no", 4)] + \
        ([] if lengths else [(6, "toolongname", 6)]) + [(7, "" if h.dest.kind != "duckdb" else None, 7.25), (8, None, 8)]
    assert [bool(r[3]) for r in got] == [True, False, False] + ([] if lengths else [True]) + [False, True]
    rejects = _rejects(h, o)
    assert [(r["line"], r["column"]) for r in rejects][:2] == [("4", "id"), ("7", rejects[1]["column"])]
    assert "whole number" in rejects[0]["reason"] and rejects[0]["row"].startswith("3.5,bob")
    assert "Expected Number of Columns" in rejects[1]["reason"] and rejects[1]["row"] == "5,cy,5"
    if lengths:
        assert rejects[2]["line"] == "8" and rejects[2]["column"] == "name" and "longer than 5" in rejects[2]["reason"]
    note = h.notes.notices[-1]
    assert note.level == "success" and f"{o.rejected} bad rows set aside" in note.message
    assert note.fields["rejected"] == o.rejected
    assert h.store.exists(o.moved_to)  # the original is archived whole


def test_more_bad_rows_than_allowed_fail_the_whole_file(h):
    h.create("t", {**SPEC, "input_options": {"max_bad_rows": 1}})
    o = h.run("t", "input/load", "a.csv", GOOD_AND_BAD)
    assert o.status == "failed"
    report = h.report(o)
    n = 2 if h.dest.kind == "duckdb" else 3  # DuckDB keeps no VARCHAR length
    assert f"{n} bad rows, more than the table's max_bad_rows (1): line 4, column 'id'" in report["what"]
    assert report["where"]["line"] == 4 and report["where"]["column_name"] == "id"
    assert h.dest.rows("t", "id") == []  # nothing half-written
    assert not h.store.exists(o.moved_to + ".rejects.csv")


def test_upserts_and_json_files_set_bad_rows_aside_too(h):
    h.create("t", SPEC)
    assert h.run("t", "input/load", "a.csv", "id,name,amount,ok\n1,a,1,true\n2,b,2,true\n").status == "succeeded"
    o = h.run("t", "input/update", "u.jsonl", "\n".join(json.dumps(r) for r in [
        {"id": 1, "name": "A", "amount": 10, "ok": False},
        {"id": 2, "name": "B", "amount": "lots", "ok": True},   # line 2: not a number
        {"id": 3, "name": "C", "amount": 30, "ok": True}]) + "\n")
    assert o.status == "succeeded", o
    assert (o.rows, o.rejected) == (2, 1) or (o.rejected == 1)
    assert [r[:3] for r in h.dest.rows("t", "id, name, amount, ok")] == [(1, "A", 10), (2, "b", 2), (3, "C", 30)]
    (reject,) = _rejects(h, o)
    assert (reject["line"], reject["column"]) == ("2", "amount") and "number" in reject["reason"]


def test_without_max_bad_rows_one_bad_row_still_fails_the_file(h):
    h.create("t", {k: v for k, v in SPEC.items() if k != "input_options"})
    o = h.run("t", "input/load", "a.csv", GOOD_AND_BAD)
    assert o.status == "failed"
    assert h.dest.rows("t", "id") == []


@pytest.mark.parametrize("value,type_text,bad", [
    ("12", "integer", False), (" -7 ", "int(11)", False), ("1.5", "integer", True), ("1e3", "INTEGER", True),
    ("0x10", "bigint", True), ("99999", "smallint", True), ("300", "tinyint", True), ("300", "tinyint unsigned", True),
    ("1.239", "numeric(12,2)", False), ("1e3", "decimal(6,2)", False), ("123456", "DECIMAL(6,2)", True),
    ("abc", "numeric", True), ("yes", "boolean", True), ("T", "tinyint(1)", False), ("NaN", "double precision", False),
    ("2026-11-30", "date", False), ("30/11/2026", "date", True), ("2026-11-30 10:00:00", "timestamp without time zone", False),
    ("2026-11-30T10:00:00Z", "timestamp with time zone", False), ("later", "datetime", True),
    ("héllo", "character varying(5)", False), ("héllo!", "varchar(5)", True), ("anything", "text", False),
])
def test_value_checks_follow_what_the_engines_accept(value, type_text, bad):
    import duckdb

    check = value_check("v", type_text)
    assert check is not None or not bad
    if check is not None:
        got = duckdb.connect().execute(f"SELECT {check[0]} FROM (SELECT ?::VARCHAR AS v)", [value]).fetchone()[0]
        assert bool(got) is bad, (value, type_text, check)


def test_redshift_sets_bad_rows_aside_with_maxerror_and_reads_them_from_stl_load_errors():
    d = get_dialect("redshift")
    info = TableInfo({"id": "INTEGER", "name": "VARCHAR(5)"}, ["id"])
    data = DataFile("k", "csv", None, ["id", "name"], InputOptions(max_bad_rows=7))
    for fn, folder in ((plan_load, "input/load"), (plan_upsert, "input/update")):
        pk = parse_key(f"destination=redshift/database=analytics/table_name=t/{folder}/a.csv")
        steps = fn(d, pk, info, data, "s3://b/a.csv", iam_role="arn:aws:iam::1:role/r").steps
        copy = [s for s in steps if s.kind == "copy"][0]
        assert copy.sql.endswith("TIMEFORMAT 'auto' DATEFORMAT 'auto' EMPTYASNULL MAXERROR 7")
        assert "FORMAT AS CSV IGNOREHEADER 1" in copy.sql  # max_bad_rows alone changes nothing else
        rejects = [s for s in steps if s.kind == "rejects"]
        assert len(rejects) == 1 and "stl_load_errors WHERE query = pg_last_copy_id()" in rejects[0].sql
        assert steps.index(rejects[0]) == steps.index(copy) + 1
    js = plan_load(d, parse_key("destination=redshift/database=analytics/table_name=t/input/load/a.jsonl"), info,
                   DataFile("k", "jsonl", None, ["id", "name"], InputOptions(max_bad_rows=2)), "s3://b/a.jsonl")
    assert "FORMAT AS JSON 'auto ignorecase' TIMEFORMAT 'auto' DATEFORMAT 'auto' EMPTYASNULL MAXERROR 2" in \
        [s for s in js.steps if s.kind == "copy"][0].sql
    plain = plan_load(d, parse_key("destination=redshift/database=analytics/table_name=t/input/load/a.csv"), info,
                      DataFile("k", "csv", None, ["id", "name"]), "s3://b/a.csv")
    assert "MAXERROR" not in " ".join(s.sql for s in plain.steps)
    assert not [s for s in plain.steps if s.kind == "rejects"]


def test_max_bad_rows_must_be_a_whole_number_of_rows():
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ValueError):
            InputOptions(max_bad_rows=bad)


@pytest.mark.parametrize("name,body", [
    ("a.csv", "id,name\n1,a\n2.5,b\n"),
    ("a.jsonl", '{"id": 1, "name": "a"}\n{"id": 2.5, "name": "b"}\n'),
    ("b.jsonl", '{"id": 1, "name": "a"}\n{"id": true, "name": "b"}\n'),
    ("c.csv", "id,name\n1e3,a\n"),
])
def test_no_engine_rounds_a_value_into_a_whole_number_column(h, name, body):
    """DuckDB's readers cast 2.5 to 2 (or 3), 1e3 to 1000 and JSON true to 1 in an INTEGER column;
    PostgreSQL and MySQL refuse them. The file fails on every engine, naming the column."""
    h.create("t", {"column_specification": {"id": "INTEGER", "name": "VARCHAR(5)"}})
    o = h.run("t", "input/load", name, body)
    assert o.status == "failed", o
    assert h.report(o)["where"].get("column_name") == "id" or "id" in h.report(o)["what"]
    assert h.dest.rows("t", "id") == []


def test_parquet_files_are_screened_too(h, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    h.create("t", SPEC)
    sink = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"], "amount": [1.5, 2.0, 3.25],
                             "ok": ["true", "maybe", "false"]}), sink)
    o = h.run("t", "input/load", "p.parquet", sink.read_bytes())
    assert o.status == "succeeded", o
    assert o.rejected == 1 and [r[:3] for r in h.dest.rows("t", "id, name, amount, ok")] == [(1, "a", 1.5), (3, "c", 3.25)]
    (reject,) = _rejects(h, o)
    assert (reject["record"], reject["column"]) == ("2", "ok") and "boolean" in reject["reason"]


@pytest.mark.parametrize("dest", ["duckdb"], indirect=True)  # the screening is the same for every engine
def test_a_file_of_mostly_bad_rows_is_refused_without_listing_them(h):
    """200,000 rows, half of them bad (unreadable or not a number), max_bad_rows 10: counted in SQL
    and refused, naming the count and the first few, without building a list of 100,000 rejects."""
    import time

    h.create("t", {**SPEC, "input_options": {"max_bad_rows": 10}})
    rows = "".join(f"{i},n,{i % 1000},t\n" if i % 2 else (f"{i},n\n" if i % 4 else f"{i},n,x,t\n") for i in range(200_000))
    t0 = time.perf_counter()
    o = h.run("t", "input/load", "a.csv", "id,name,amount,ok\n" + rows)
    assert o.status == "failed"
    report = h.report(o)
    assert report["what"].startswith("100000 bad rows, more than the table's max_bad_rows (10): line 2, ")
    assert report["where"]["line"] == 2 and time.perf_counter() - t0 < 30
    assert h.dest.rows("t", "id") == []
