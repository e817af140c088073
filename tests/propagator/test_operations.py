"""Every operation on every engine that runs here: create, add, drop, load, upsert, gzip, BOM."""

from __future__ import annotations

import gzip
import json

import pytest

from shipyard.propagator.ledger import LEDGER_TABLE
from tests.helpers import read_outbox


@pytest.fixture
def bucket(store_url):
    """These tests run on both stores: a local folder and an S3 bucket (moto's server over HTTP)."""
    return store_url


def test_create_makes_table_records_ledger_and_moves_file(h):
    h.create()
    assert h.dest.columns("orders") == ["id", "name", "amount", "city"]
    key = h.dest.key("orders", "schema/create", "orders.json")
    assert not h.store.exists(key)
    assert h.store.exists(h.dest.key("orders", "succeeded", "orders.json"))
    assert h.dest.query(f"SELECT object_key, status FROM {LEDGER_TABLE}") == [(key, "succeeded")]
    [n] = h.notes.notices
    assert n.level == "success" and n.fields["table"] == f"{h.dest.db}.orders"
    assert n.channel == "data-loader-notification"


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
def test_add_then_drop_columns(h):
    h.create()
    o = h.run("orders", "schema/update", "add.json",
              {"column_specification": {"state": "VARCHAR(20)", "zip": "INTEGER"}, "operation_type": "add"})
    assert o.status == "succeeded", o
    assert h.dest.columns("orders") == ["id", "name", "amount", "city", "state", "zip"]
    o = h.run("orders", "schema/update", "drop.json", {"column_specification": ["city", "zip"], "operation_type": "drop"})
    assert o.status == "succeeded", o
    assert h.dest.columns("orders") == ["id", "name", "amount", "state"]


def test_load_matches_header_by_name_and_defaults_missing_columns(h):
    h.create()
    o = h.run("orders", "input/load", "a.csv", "amount,ID,name\n10,1,ann\n20,2,\"bo, b\"\n")
    assert o.status == "succeeded" and o.rows == 2, o
    assert h.dest.rows("orders") == [(1, "ann", 10, None), (2, "bo, b", 20, None)]
    # input/load appends
    o = h.run("orders", "input/load", "b.csv", "id,city\n3,Pune\n")
    assert o.rows == 1
    assert h.dest.rows("orders", "id, city") == [(1, None), (2, None), (3, "Pune")]
    assert [n.fields["rows"] for n in h.notes.notices[1:]] == [2, 1]


def test_upsert_updates_only_file_columns_and_last_row_wins(h):
    h.create()
    h.run("orders", "input/load", "a.csv", "id,name,amount,city\n1,ann,10,Pune\n2,bob,20,Goa\n")
    o = h.run("orders", "input/update", "u.csv", "id,amount\n2,21\n3,30\n2,22\n")
    assert o.status == "succeeded" and o.rows == 3, o
    # name and city kept for id 2; id 3 inserted with only the file's columns; the last 2 wins.
    assert h.dest.rows("orders") == [(1, "ann", 10, "Pune"), (2, "bob", 22, "Goa"), (3, None, 30, None)]


def test_upsert_without_duplicates_uses_fast_path_and_updates(h):
    h.create()
    h.run("orders", "input/load", "a.csv", "id,name,amount\n1,ann,10\n")
    o = h.run("orders", "input/update", "u.csv", "name,id\nANN,1\nzed,9\n")
    assert o.status == "succeeded", o
    assert h.dest.rows("orders", "id, name, amount") == [(1, "ANN", 10), (9, "zed", None)]


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
def test_gzip_load_and_upsert(h):
    h.create()
    o = h.run("orders", "input/load", "a.csv.gz", gzip.compress(b"id,name\n1,a\n2,b\n"))
    assert o.status == "succeeded" and o.rows == 2, o
    o = h.run("orders", "input/update", "b.csv.gz", gzip.compress(b"id,name\n2,B\n"))
    assert o.status == "succeeded", o
    assert h.dest.rows("orders", "id, name") == [(1, "a"), (2, "B")]


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
def test_bom_and_crlf_are_handled(h):
    h.create()
    o = h.run("orders", "input/load", "bom.csv", b"\xef\xbb\xbfid,name\r\n1,caf\xc3\xa9\r\n")
    assert o.status == "succeeded", o
    assert h.dest.rows("orders", "id, name") == [(1, "café")]


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
def test_create_with_sort_key_only_and_no_primary_key(h):
    spec = {"column_specification": {"ts": "TIMESTAMP", "v": "DOUBLE PRECISION"}, "sort_key": "ts"}
    h.create("events", spec)
    o = h.run("events", "input/load", "e.csv", "ts,v\n2026-11-28 10:00:00,1.5\n")
    assert o.status == "succeeded" and o.rows == 1


def test_outcomes_are_announced_in_the_outbox(bucket, dest, tmp_path):
    # The default notifier: one JSON line per notice in SHIPYARD_OUTBOX.
    from shipyard.propagator import Propagator
    from shipyard.store import open_store

    store = open_store(bucket)
    store.put(dest.key("orders", "schema/create", "o.json"),
              json.dumps({"column_specification": {"id": "INTEGER"}, "primary_key": ["id"]}).encode())
    store.put(dest.key("orders", "input/load", "a.csv"), b"id\n1\n")
    store.put(dest.key("orders", "input/load", "b.csv"), b"id\nx\n")
    with Propagator.from_settings(bucket) as p:
        outs = p.process_pending()
    assert [o.status for o in outs] == ["succeeded", "succeeded", "failed"]
    lines = read_outbox(tmp_path / "outbox.jsonl")
    assert [n["level"] for n in lines] == ["success", "success", "failure"]
    assert lines[1]["fields"]["rows"] == 1 and "seconds" in lines[1]["fields"]
    fail = lines[2]
    assert "failed/b.csv" in fail["message"] and fail["attachment"]["key"].endswith("failed/b.csv.error.json")
    assert fail["attachment"]["bucket"] == store.url


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_mixed_case_names_keep_their_folders(h):
    base = f"destination={h.dest.name}/database={h.dest.db}/table_name=Orders/"
    h.store.put(base + "schema/create/c.json", json.dumps({"column_specification": {"ID": "INTEGER"}}).encode())
    h.store.put(base + "input/load/a.csv", b"Id\n1\n")
    outs = h.p.process_pending()
    assert [o.status for o in outs] == ["succeeded", "succeeded"], outs
    assert h.store.exists(base + "succeeded/c.json") and h.store.exists(base + "succeeded/a.csv")
    assert h.dest.rows("orders", "id") == [(1,)]  # the table itself is lower-case


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
def test_last_row_wins_with_a_user_column_named_rowid(h):
    """Issue 10: DuckDB's "last row wins" ordered by rowid, which a user column of that name shadowed."""
    h.create("t", {"column_specification": {"id": "INTEGER", "rowid": "INTEGER", "v": "VARCHAR(10)"},
                   "primary_key": ["id"], "dist_key": "id", "sort_key": ["id"]})
    o = h.run("t", "input/update", "u.csv", "id,rowid,v\n1,9,first\n1,1,last\n2,5,x\n")
    assert o.status == "succeeded", o
    assert h.dest.rows("t", "id, rowid, v") == [(1, 1, "last"), (2, 5, "x")]


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
def test_a_63_character_table_with_a_sort_key(h):
    """Issue 10: the sort-key index was named "<table>__sort_key" cut at 63 bytes: the table's own name."""
    name = "t" * 63
    h.create(name, {"column_specification": {"id": "INTEGER", "ts": "TIMESTAMP"}, "sort_key": ["ts"],
                    "dist_key": "id"})
    o = h.run(name, "input/load", "a.csv", "id,ts\n1,2026-01-01 00:00:00\n")
    assert o.status == "succeeded" and h.dest.rows(name, "id") == [(1,)], o


def test_nothing_archived_is_ever_overwritten(h):
    """Issue 17 (3): a second daily.csv, or a data file named like a spec, gets a unique archive
    name; failed/ keeps every attempt with its report; the ledger records where each file went."""
    h.create()  # schema/create/orders.json -> succeeded/orders.json
    spec_archive = h.dest.key("orders", "succeeded", "orders.json")
    spec_bytes = h.store.open(spec_archive).read()
    outs = [h.run("orders", "input/load", "orders.json", '[{"id": 1, "name": "a"}]'),
            h.run("orders", "input/load", "daily.csv", "id,name\n2,b\n"),
            h.run("orders", "input/load", "daily.csv", "id,name\n3,c\n"),
            h.run("orders", "input/load", "bad.csv", "id\nx\n"),
            h.run("orders", "input/load", "bad.csv", "id\ny\n")]
    assert [o.status for o in outs] == ["succeeded"] * 3 + ["failed"] * 2, outs
    moved = [o.moved_to for o in outs]
    assert len(set(moved) | {spec_archive}) == 6  # every file kept, under its own name
    assert h.store.open(spec_archive).read() == spec_bytes  # the spec was not overwritten
    assert moved[1] == h.dest.key("orders", "succeeded", "daily.csv") and moved[2].endswith(".csv")
    assert h.store.open(moved[2]).read() == b"id,name\n3,c\n"
    assert moved[0].endswith(".json") and "/succeeded/orders." in moved[0]
    for o in outs[3:]:
        assert h.store.exists(o.moved_to) and h.store.exists(o.moved_to + ".error.json")
        assert h.report(o)["file"] == o.moved_to
    recorded = h.dest.query(f"SELECT object_key, archive_key, status FROM {LEDGER_TABLE}")
    assert (h.dest.key("orders", "schema/create", "orders.json"), spec_archive, "succeeded") in recorded
    # every attempt, failed ones too, with where its file went
    assert sorted((v, st) for k, v, st in recorded if "/input/" in k) == \
        sorted([(m, "succeeded") for m in moved[:3]] + [(m, "failed") for m in moved[3:]])
    assert h.dest.rows("orders", "id") == [(1,), (2,), (3,)]


@pytest.mark.parametrize("store_url", ["local"], indirect=True)  # store-independent: local folder only
def test_a_ledger_made_before_archive_keys_is_migrated(h):
    """Ledgers created by earlier versions have no archive_key column: they are read as they are
    and get the column (ALTER TABLE ... ADD COLUMN IF NOT EXISTS) before the next write."""
    from shipyard.propagator.ledger import key_hash

    if h.dest.kind == "duckdb":
        h.dest.query(f"CREATE SCHEMA IF NOT EXISTS {h.dest.db}")
    _execute(h, f"CREATE TABLE {LEDGER_TABLE} (key_hash CHAR(64) NOT NULL PRIMARY KEY, object_key VARCHAR(1024) "
                 "NOT NULL, etag VARCHAR(128), size BIGINT, operation VARCHAR(16) NOT NULL, table_name VARCHAR(64) "
                 "NOT NULL, status VARCHAR(16) NOT NULL, row_count BIGINT, seconds DOUBLE PRECISION, "
                 "processed_at TIMESTAMP)")
    key = h.put("orders", "schema/create", "orders.json", {"column_specification": {"id": "INTEGER"}})
    etag = h.store.head(key).etag
    _execute(h, f"INSERT INTO {LEDGER_TABLE} VALUES ('{key_hash(key, etag)}', '{key}', '{etag}', 1, 'create', "
                 "'orders', 'succeeded', 0, 0.1, '2026-01-01 00:00:00')")
    o = h.p.process_key(key)  # recorded by the old ledger: healed, moved to succeeded/
    assert o.status == "succeeded" and o.moved_to == h.dest.key("orders", "succeeded", "orders.json"), o
    h.create("t2", {"column_specification": {"id": "INTEGER"}})
    assert "archive_key" in [c.lower() for c in h.dest.columns(LEDGER_TABLE)]


def _execute(h, sql: str) -> None:
    """A statement through the engine's own driver, committed."""
    if h.dest.kind == "duckdb":
        h.dest.query(sql)
    elif h.dest.kind == "postgres":
        import psycopg
        from psycopg.conninfo import make_conninfo

        with psycopg.connect(make_conninfo(h.dest.url, dbname=h.dest.db), autocommit=True) as c:
            c.execute(sql)
    else:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=h.dest.db,
                               autocommit=True)
        try:
            conn.cursor().execute(sql)
        finally:
            conn.close()
