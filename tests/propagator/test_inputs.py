"""JSON lines, JSON arrays and Parquet (gzip where it applies), on every destination and both
stores: fields matched by name like CSV headers; the same error reports."""

from __future__ import annotations

import gzip
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

SPEC = {"column_specification": {"id": "INTEGER", "name": "VARCHAR(30)", "amount": "DECIMAL(10,2)",
                                 "ts": "TIMESTAMP", "ok": "BOOLEAN"}, "primary_key": ["id"]}


@pytest.fixture
def bucket(store_url):  # this module runs on a local folder and on S3
    return store_url


def _parquet(**cols) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf)
    return buf.getvalue()


def test_json_lines_array_and_parquet_load_and_upsert(h):
    h.create("t", SPEC)
    o = h.run("t", "input/load", "a.jsonl",
              b'{"id": 1, "name": "a", "amount": 1.5, "ts": "2026-11-01 10:00:00", "ok": true}\n\n{"id": 2, "amount": 2}\n')
    assert o.status == "succeeded" and o.rows == 2, o
    # A JSON array; a field that only later records have still counts.
    o = h.run("t", "input/load", "b.json", b'[{"amount": 3, "id": 3}, {"id": 4, "name": "d, \\"q\\""}]')
    assert o.status == "succeeded" and o.rows == 2, o
    o = h.run("t", "input/load", "c.parquet", _parquet(ID=[5, 6], name=["e", "f"]))
    assert o.status == "succeeded" and o.rows == 2, o
    o = h.run("t", "input/update", "d.ndjson.gz", gzip.compress(b'{"id": 1, "amount": 9}\n{"id": 7, "amount": 7}\n'))
    assert o.status == "succeeded" and o.rows == 2, o
    o = h.run("t", "input/update", "e.json.gz", gzip.compress(b'[{"id": 2, "name": "B"}, {"id": 2, "name": "BB"}]'))
    assert o.status == "succeeded", o
    rows = h.dest.rows("t", "id, name, amount, ok")
    assert rows == [(1, "a", 9, True), (2, "BB", 2, None), (3, None, 3, None), (4, 'd, "q"', None, None),
                    (5, "e", None, None), (6, "f", None, None), (7, None, 7, None)]


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
def test_parquet_update_writes_only_its_columns(h):
    h.create("t", SPEC)
    h.run("t", "input/load", "a.jsonl", b'{"id": 1, "name": "a", "amount": 1}\n')
    o = h.run("t", "input/update", "u.parquet", _parquet(id=pa.array([1], pa.int32()), amount=pa.array([5.25])))
    assert o.status == "succeeded", o
    assert h.dest.rows("t", "id, name, amount") == [(1, "a", 5.25)]


@pytest.mark.parametrize("name,body,what,where", [
    ("bad.jsonl", b'{"id": 1}\n{"id": 2}\n{"id": "x"}\n', "", {"line": 3}),
    ("trunc.jsonl", b'{"id": 1}\n{"id": 2\n', "json", None),
    ("unknown.jsonl", b'{"idx": 1}\n', "column 'idx'", {"field": "idx"}),
    ("empty.jsonl", b"", "empty", None),
    ("scalar.jsonl", b"5\n", "not an object", {"line": 1}),
    ("obj.json", b'{"id": 1}', "json array", None),
    ("emptyarr.json", b"[]", "empty", None),
    ("bad.parquet", b"PAR1 not really", "parquet", None),
    ("nogz.jsonl.gz", b'{"id": 1}\n', "gzip", None),
])
@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
def test_bad_json_and_parquet_files(h, name, body, what, where):
    h.create("t", SPEC)
    o = h.run("t", "input/load", name, body)
    assert o.status == "failed", o
    report = h.report(o)
    assert what.lower() in (report["what"] + report["how_to_fix"]).lower(), report
    for k, v in (where or {}).items():
        assert report["where"][k] == v, report
    assert h.dest.rows("t", "id") == []


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
def test_parquet_with_bad_value_for_the_column(h):
    h.create("t", SPEC)
    o = h.run("t", "input/load", "p.parquet", _parquet(id=[1, 2], ts=["2026-11-01 10:00:00", "not a time"]))
    assert o.status == "failed", o
    assert h.dest.rows("t", "id") == []
