"""Key layout and spec parsing (no database)."""

from __future__ import annotations

import json

import pytest

from shipyard.errors import InputError
from shipyard.propagator.layout import OutsideLayout, parse_key
from shipyard.propagator.specs import create_schema, parse_create, parse_update, update_schema

P = "destination=postgres/database=sales/table_name=orders/"


@pytest.mark.parametrize("rest,op", [("schema/create/a.json", "create"), ("schema/update/a.json", "alter"),
                                     ("input/load/a.csv", "load"), ("input/update/a.csv.gz", "upsert"),
                                     ("input/load/a.jsonl", "load"), ("input/load/a.parquet", "load")])
def test_layout_operations(rest, op):
    k = parse_key(P + rest)
    assert k.pending and k.operation == op and (k.destination, k.database, k.table) == ("postgres", "sales", "orders")
    name = rest.rsplit("/", 1)[1]
    assert k.succeeded_key == P + "succeeded/" + name
    assert k.failed_key == P + "failed/" + name and k.error_key == P + "failed/" + name + ".error.json"


@pytest.mark.parametrize("key", ["a.csv", "destination=x/database=y/a.csv", P + "input/a.csv", P + "input/other/a.csv",
                                 P + "schema/create/a.csv", P + "input/load/a.xlsx", P + "input/load/sub/a.csv",
                                 "database=y/destination=x/table_name=t/input/load/a.csv", P + "input/load/.hidden.csv"])
def test_outside_layout(key):
    with pytest.raises(OutsideLayout):
        parse_key(key)


def test_done_folders_are_never_pending():
    for folder in ("succeeded", "failed"):
        k = parse_key(P + folder + "/a.csv")
        assert not k.pending and k.state == folder


@pytest.mark.parametrize("key", [P + "input/load/../../x.csv", "/abs/" + P, P + "input/load/a\\b.csv"])
def test_escaping_keys_are_refused(key):
    with pytest.raises(InputError):
        parse_key(key)


@pytest.mark.parametrize("table", ['a"b', "a;b", "a b", "1abc", "x" * 64, "_shipyard_x", "a-b"])
def test_bad_identifiers_fail_the_file(table):
    k = parse_key(f"destination=postgres/database=sales/table_name={table}/input/load/a.csv")
    with pytest.raises(InputError, match="invalid table name"):
        k.check_identifiers()


def test_identifiers_are_lower_cased():
    k = parse_key("destination=Postgres/database=Sales/table_name=Orders/input/load/a.csv").check_identifiers()
    assert (k.destination, k.database, k.table) == ("postgres", "sales", "orders")


def test_create_spec_accepts_the_blog_format():
    s = parse_create(json.dumps({"column_specification": {"id": "INTEGER", "Name": "VARCHAR", "uuid": "VARCHAR"},
                                 "primary_key": ["id"], "dist_key": "uuid", "sort_key": ["id"]}).encode())
    assert list(s.column_specification) == ["id", "name", "uuid"] and s.sort_key == ["id"]
    # a single sort key may be a string
    assert parse_create(b'{"column_specification": {"a": "INT"}, "sort_key": "a"}').sort_key == ["a"]


@pytest.mark.parametrize("doc,msg", [
    (b"", "empty"), (b"[1]", "must be a JSON object"), (b'{"column_specification": {}}', "column_specification"),
    (b'{"column_specification": {"a": "INT", "A": "INT"}}', "given twice"),
    (b'{"column_specification": {"a": "INT"}, "dist_key": "b"}', "dist_key names 'b'"),
    (b'{"column_specification": {"a": 5}}', "column_specification"),
    (b'\xff\xfe{}', "not UTF-8"),
])
def test_create_spec_errors(doc, msg):
    with pytest.raises(InputError, match=msg):
        parse_create(doc)


def test_update_specs():
    assert parse_update(b'{"operation_type": "add", "column_specification": {"c": "INT"}}').operation_type == "add"
    assert parse_update(b'{"operation_type": "drop", "column_specification": ["c"]}').column_specification == ["c"]
    with pytest.raises(InputError, match="unknown operation_type 'rename'"):
        parse_update(b'{"operation_type": "rename", "column_specification": ["c"]}')
    with pytest.raises(InputError, match="operation_type is missing"):
        parse_update(b'{"column_specification": ["c"]}')
    with pytest.raises(InputError):  # add needs a mapping, drop a list
        parse_update(b'{"operation_type": "add", "column_specification": ["c"]}')


def test_json_schemas_describe_the_fields():
    c = create_schema()
    assert set(c["properties"]) == {"column_specification", "primary_key", "dist_key", "sort_key", "foreign_keys",
                                    "input_options"}
    assert set(c["$defs"]["InputOptions"]["properties"]) == {"delimiter", "quote", "null", "header", "encoding",
                                                                  "max_bad_rows"}
    assert c["required"] == ["column_specification"]
    u = json.dumps(update_schema())
    assert '"add"' in u and '"drop"' in u and '"options"' in u


# -- properties: no input string escapes the parsers as SQL or as an unexpected exception -------

from hypothesis import given, settings, strategies as st  # noqa: E402

from shipyard.propagator.dialects import get_dialect  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_type_text_is_refused_or_renders_as_a_single_type(text):
    import sqlglot
    from sqlglot import exp

    for name in ("postgres", "duckdb", "mysql", "redshift"):
        d = get_dialect(name)
        try:
            out = d.type_sql(text, "c")
        except InputError:
            continue
        assert not any(ch in out for ch in ";'\"`-/*")
        assert isinstance(sqlglot.parse_one(f"CAST(x AS {out})", read=d.sqlglot), exp.Cast)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["destination=d", "database=x", "table_name=t", "schema", "input", "create", "update",
                                 "load", "succeeded", "failed", "..", ".", "", "a.csv", "b.json", "x y", "a;b"]),
                max_size=7))
def test_any_key_parses_or_is_refused_cleanly(parts):
    key = "/".join(parts)
    try:
        k = parse_key(key)
    except InputError:
        return
    assert ".." not in k.key.split("/")
    if k.pending:
        try:
            k = k.check_identifiers()
        except InputError:
            return
        assert k.table.isidentifier() and k.database.isidentifier()
