"""Schema kept in the manifest: inferred once, widened by new fields, conflicts with file:line."""

from __future__ import annotations

import json

import pytest

from shipyard.errors import InputError
from shipyard.lake.ingest import ingest
from shipyard.lake.manifest import read_manifest
from shipyard.lake.ops import query, stats

from .conftest import make_events


def test_new_fields_are_added(lake_env):
    events = make_events(40)
    lake_env.put("a.jsonl", events[:20])
    ingest("events")
    later = [dict(e, country="IN", device={**e["device"], "model": "pixel"}) for e in events[20:]]
    lake_env.put("b.jsonl", later)
    r = ingest("events")
    assert r.new_columns == ["device.model", "country"]
    schema = read_manifest(lake_env.lake, "events").schema
    assert schema["country"] == "VARCHAR"
    assert schema["device"] == {"struct": {"os": "VARCHAR", "version": "BIGINT", "model": "VARCHAR"}}
    rows = query("SELECT event_id, country, device.model FROM events ORDER BY event_id").rows
    assert rows[0] == ("e000000", None, None)  # old rows: NULL in the new columns
    assert rows[-1] == ("e000039", "IN", "pixel")


def test_type_conflict_names_file_and_line(lake_env):
    events = make_events(10)
    lake_env.put("a.jsonl", events[:5])
    ingest("events")
    before = lake_env.manifest_bytes()
    keys = lake_env.data_keys()
    bad = events[5:]
    bad[2] = dict(bad[2], amount=12.5)  # a float in an integer column: DuckDB alone would round it
    lake_env.put("day2/b.jsonl", bad)
    with pytest.raises(InputError) as ei:
        ingest("events")
    msg = ei.value.message
    assert "day2/b.jsonl, line 3" in msg and "'amount'" in msg and "BIGINT" in msg and "12.5" in msg
    # Nothing written, nothing checkpointed.
    assert lake_env.manifest_bytes() == before and lake_env.data_keys() == keys


def test_nested_and_timestamp_conflicts(local_env):
    events = make_events(6)
    local_env.put("a.jsonl", events[:3])
    ingest("events")
    nested = [dict(events[3], device={"os": "ios", "version": "fourteen"})]
    local_env.put("n.jsonl", nested)
    with pytest.raises(InputError, match=r"n\.jsonl, line 1: field 'device\.version' is BIGINT"):
        ingest("events")
    local_env.raw.delete("n.jsonl")
    lines = [json.dumps(e) for e in events[3:]] + [json.dumps(dict(events[4], event_id="z", ts="yesterday"))]
    local_env.put("t.jsonl", ("\n".join(lines) + "\n").encode())
    with pytest.raises(InputError, match=r"t\.jsonl, line 4: field 'ts' is TIMESTAMP WITH TIME ZONE"):
        ingest("events")


def test_malformed_json_line(local_env):
    local_env.put("a.jsonl", b'{"event_id": "a", "ts": "2021-03-01T00:00:00Z"}\n{"event_id": "b", "ts": \n')
    with pytest.raises(InputError, match=r"a\.jsonl, line 2: malformed JSON"):
        ingest("events")
    assert local_env.manifest_bytes() is None


def test_skip_bad_files_records_them(local_env):
    local_env.write_config(on_bad_file="skip")
    events = make_events(10)
    local_env.put("a.jsonl", events[:5])
    ingest("events")
    local_env.put("b.jsonl", events[5:8])
    local_env.put("c.jsonl", [dict(events[8], amount="lots")])
    r = ingest("events")
    assert r.rows_written == 3 and list(r.rejected) == ["c.jsonl"]
    assert "c.jsonl, line 1" in r.rejected["c.jsonl"]
    assert stats("events").rejected.keys() == {"c.jsonl"}
    assert ingest("events").rows_read == 0  # a rejected file is not retried until it changes
    local_env.put("c.jsonl", [events[8]])
    assert ingest("events").rows_written == 1


def test_inference_reads_every_row(local_env):
    # The 2.5 comes long after DuckDB's default sample (20480 rows): still DOUBLE, not rounded.
    events = make_events(21000, users=5)
    events[-1] = dict(events[-1], amount=2.5)
    local_env.put("a.jsonl", events)
    ingest("events")
    assert read_manifest(local_env.lake, "events").schema["amount"] == "DOUBLE"
    assert query(f"SELECT amount FROM events WHERE event_id = '{events[-1]['event_id']}'").rows == [(2.5,)]


def test_declared_types_and_widening(local_env):
    local_env.write_config(columns={"amount": "DOUBLE"})
    events = make_events(4)
    local_env.put("a.jsonl", events)
    ingest("events")
    schema = read_manifest(local_env.lake, "events").schema
    assert schema["amount"] == "DOUBLE"   # integers read into a declared DOUBLE
    assert schema["user_id"] == "VARCHAR"  # inferred UUIDs are kept as text (portable)
    local_env.put("b.jsonl", [dict(make_events(1, prefix="f")[0], amount=9.75)])
    ingest("events")
    assert query("SELECT amount FROM events WHERE event_id = 'f000000'").rows == [(9.75,)]


def test_declared_uuid_columns_are_binary_and_checked(lake_env):
    # Declared UUID: 16 bytes in Parquet instead of 36 characters of text.
    lake_env.write_config(columns={"event_id": "UUID"}, id=["event_id"])
    import uuid

    events = make_events(30)
    for i, e in enumerate(events):
        e["event_id"] = str(uuid.UUID(int=i + 1))
    lake_env.put("a.jsonl", events)
    ingest("events")
    assert read_manifest(lake_env.lake, "events").schema["event_id"] == "UUID"
    assert query("SELECT typeof(event_id), count(*) FROM events GROUP BY 1").rows == [("UUID", 30)]
    assert query(f"SELECT amount FROM events WHERE event_id = '{events[3]['event_id']}'").rows == [
        (events[3]["amount"],)]
    lake_env.put("b.jsonl", events[:10])
    assert ingest("events").rows_written == 0  # dedupe on a UUID key
    lake_env.put("c.jsonl", [dict(events[0], event_id="not-a-uuid")])
    with pytest.raises(InputError, match=r"c\.jsonl, line 1: field 'event_id' is UUID"):
        ingest("events")
