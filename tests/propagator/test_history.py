"""Issue 17 (7): `history` answers "what happened to my file?" from the ledger and the reports."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.errors import InputError
from shipyard.propagator.history import history, parse_since


def test_history_lists_every_file_with_its_outcome(h):
    h.create()
    h.run("orders", "input/load", "a.csv", "id,name\n1,a\n2,b\n")
    h.run("orders", "input/load", "a.csv", "id,name\n3,c\n")  # the same name again
    bad = h.run("orders", "input/load", "bad.csv", "id\nx\n")
    h.create("other")
    entries = history(h.p, table="orders")
    got = [(e.key.rsplit("/", 2)[-2] + "/" + e.key.rsplit("/", 1)[-1], e.status, e.rows) for e in entries]
    assert sorted(got) == sorted([("create/orders.json", "succeeded", 0), ("load/a.csv", "succeeded", 2),
                                  ("load/a.csv", "succeeded", 1), ("load/bad.csv", "failed", None)]), got
    archived = {e.archive_key for e in entries if e.status == "succeeded"}
    assert len(archived) == 3 and all(h.store.exists(k) for k in archived)  # where each file is now
    [failed] = history(h.p, table=f"{h.dest.db}.orders", status="failed")
    assert failed.archive_key == bad.moved_to and "orders" in failed.reason
    assert {e.table for e in history(h.p)} == {f"{h.dest.db}.orders", f"{h.dest.db}.other"}
    later = datetime.now(timezone.utc) + timedelta(days=2)
    assert history(h.p, since=timedelta(days=1), now=later) == []
    assert len(history(h.p, since=timedelta(days=1))) == 5


@pytest.mark.parametrize("dest", ["duckdb"], indirect=True)
def test_cli_history_json_and_bad_arguments(h, bucket):
    h.create()
    h.run("orders", "input/load", "a.csv", "id\n1\n")
    r = CliRunner().invoke(app, ["propagator", "history", "--bucket", bucket, "--json", "--status", "succeeded"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.splitlines()]
    assert sorted((x["operation"], x["rows"]) for x in lines) == [("create", 0), ("load", 1)]
    r = CliRunner().invoke(app, ["propagator", "history", "--bucket", bucket])
    assert r.exit_code == 0 and "a.csv" in r.output
    with pytest.raises(InputError):
        parse_since("yesterday")
    assert parse_since("12h") == timedelta(hours=12)


def test_retry_checks_the_cause_then_moves_the_file_back(h):
    h.create()  # orders: id, name, amount, city
    bad = h.run("orders", "input/load", "zip.csv", "id,zip\n1,411001\n")
    assert bad.status == "failed"
    from shipyard.propagator.history import retry

    with pytest.raises(InputError, match="would fail again"):
        retry(h.p, bad.moved_to)  # the table still has no zip column
    assert h.store.exists(bad.moved_to)
    assert h.run("orders", "schema/update", "zip.json",
                 {"operation_type": "add", "column_specification": {"zip": "INTEGER"}}).status == "succeeded"
    back = retry(h.p, bad.moved_to)
    assert back == bad.key and h.store.exists(back) and not h.store.exists(bad.moved_to)
    [o] = h.p.process_pending()
    assert o.status == "succeeded" and h.dest.rows("orders", "id, zip") == [(1, 411001)]
    statuses = [e.status for e in history(h.p, table="orders") if e.key == bad.key]
    assert sorted(statuses) == ["failed", "succeeded"]  # both attempts, once each
    # ... and both are in the ledger itself, each with where its file went
    from shipyard.propagator.ledger import LEDGER_TABLE

    assert sorted(h.dest.query(f"SELECT status, archive_key FROM {LEDGER_TABLE} WHERE object_key = '{bad.key}'")) == \
        [("failed", bad.moved_to), ("succeeded", o.moved_to)]
    [failed] = [e for e in history(h.p, table="orders") if e.status == "failed"]
    assert "zip" in failed.reason  # the report's why, on the ledger's row
    with pytest.raises(InputError):
        retry(h.p, bad.moved_to)  # nothing there any more
