"""Schema kept in the manifest: inferred once, widened by new fields, conflicts with file:line."""

from __future__ import annotations

import json

import pytest

from shipyard.errors import InputError
from shipyard.lake.ingest import ingest
from shipyard.lake.manifest import read_manifest
from shipyard.lake.ops import query, stats

from .conftest import dumps, make_events


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


_VALUES = {"int": 1, "neg": -5, "huge": 18446744073709551615, "dbl": 2.5, "bool": True, "str": "abc",
           "date": "2021-03-01", "ts": "2021-03-01T00:00:00", "tstz": "2021-03-01T00:00:00Z",
           "uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "obj": {"x": 1}, "obj2": {"y": "a", "x": 2.5},
           "list": [1], "list2": [{"x": True}], "null": None}


def test_union_of_files_is_what_duckdb_detects_over_them_together(tmp_path):
    # Files are typed one by one (in parallel); their union must be what DuckDB's detection
    # over every row of the whole batch gives, or a wider type: never a narrower one, which
    # would round 2.5 into 2 on the read.
    import itertools

    import duckdb

    from shipyard.lake import schema as sch
    from shipyard.lake.typecheck import detect

    con = duckdb.connect()
    for k, v in _VALUES.items():
        (tmp_path / f"{k}.json").write_text(json.dumps({"a": v, "k": k}) + "\n")
    alone = {k: detect(con, [str(tmp_path / f"{k}.json")]) for k in _VALUES}
    for a, b in itertools.combinations(_VALUES, 2):
        together = detect(con, [str(tmp_path / f"{a}.json"), str(tmp_path / f"{b}.json")])
        assert sch.union_schema([alone[a], alone[b]]) == together, (a, b)


def test_a_late_float_in_a_later_file_widens_the_batch_and_is_kept_exact(local_env):
    # 30k integers in one file, the float in the next: each file's detection sees only its own
    # rows; their union must still be DOUBLE (DuckDB given BIGINT would read 2.5 as 2).
    events = make_events(30_001, users=5)
    events[-1] = dict(events[-1], amount=2.5, flag=True)
    local_env.put("a.jsonl", events[:30_000])
    local_env.put("b.jsonl", events[30_000:])
    r = ingest("events")
    assert r.rows_written == 30_001
    schema = read_manifest(local_env.lake, "events").schema
    assert schema["amount"] == "DOUBLE" and schema["flag"] == "BOOLEAN"
    assert query(f"SELECT amount FROM events WHERE event_id = '{events[-1]['event_id']}'").rows == [(2.5,)]


def test_a_late_misfit_against_the_kept_schema_is_refused_in_any_file(local_env):
    events = make_events(30_010, users=5)
    local_env.put("a.jsonl", events[:10])
    ingest("events")  # amount is BIGINT now
    before = local_env.manifest_bytes()
    bad = events[10:]
    bad[-1] = dict(bad[-1], amount=True)  # true in a BIGINT column: DuckDB alone would read 1
    local_env.put("b.jsonl", bad[:15_000])
    local_env.put("c.jsonl", bad[15_000:])
    with pytest.raises(InputError) as ei:
        ingest("events")
    assert "c.jsonl, line 15000: field 'amount' is BIGINT in the lake but" in ei.value.message
    assert "true" in ei.value.message and "b.jsonl" not in ei.value.message
    assert local_env.manifest_bytes() == before


def _padded(events: list[dict]) -> list[dict]:
    import random

    rnd = random.Random(5)  # incompressible enough not to look like a gzip bomb
    return [dict(e, pad=rnd.randbytes(5000).hex()) for e in events]


def test_a_big_object_is_typed_in_parts_and_a_misfit_names_its_line_in_the_object(local_env):
    from shipyard.lake.staging import PART_BYTES

    events = _padded(make_events(3600, users=5))  # ~36 MB of JSON: more than one part
    assert len(dumps(events)) > PART_BYTES
    local_env.put("a.jsonl", events[:10])
    ingest("events")
    bad = list(events)
    bad[3499] = dict(bad[3499], amount=2.5)  # past the first part
    local_env.put("big.jsonl.gz", bad, gz=True)
    with pytest.raises(InputError, match=r"big\.jsonl\.gz, line 3500: field 'amount' is BIGINT"):
        ingest("events")
    local_env.put("big.jsonl.gz", events + events[:5] + events[3590:], gz=True)  # re-sent, across parts
    r = ingest("events")
    assert (r.raw_files, r.rows_read, r.rows_written) == (1, 3615, 3590)
    assert query("SELECT count(*), count(DISTINCT event_id) FROM events").rows == [(3600, 3600)]
    m = read_manifest(local_env.lake, "events")
    assert m.history[-1]["raw_files"] == 1 and "big.jsonl.gz" in m.ingested


def test_parts_are_cut_only_between_top_level_records(local_env):
    from shipyard.lake.staging import PART_BYTES

    events = _padded(make_events(7000, users=5))
    # Pretty-printed and concatenated (a record over many lines), then one JSON array: a cut
    # inside a record or inside the array would make a part unreadable.
    pretty = "".join(json.dumps(e, indent=2) + "\n" for e in events[:3500]).encode()
    array = ("[\n" + ",\n".join(json.dumps(e) for e in events[3500:]) + "\n]\n").encode()
    assert len(pretty) > PART_BYTES and len(array) > PART_BYTES
    local_env.put("pretty.json.gz", pretty, gz=True)
    local_env.put("array.json", array)
    r = ingest("events")
    assert (r.raw_files, r.rows_read, r.rows_written) == (2, 7000, 7000)
    assert query("SELECT count(DISTINCT event_id) FROM events").rows == [(7000,)]
