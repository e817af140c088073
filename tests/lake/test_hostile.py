"""Hostile and odd input (issue 10): ids, reader-internal names, NULL partitions, SQL file access."""

from __future__ import annotations

import pytest

from shipyard.errors import InputError
from shipyard.lake.ingest import ingest
from shipyard.lake.ops import query

from .conftest import make_events


def test_events_without_an_id_are_each_kept_never_merged(local_env):
    ev = make_events(6)
    no_id = [dict(ev[0], event_id=None), dict(ev[0], event_id=None), {k: v for k, v in ev[1].items()
                                                                        if k != "event_id"}]
    local_env.put("a.jsonl", ev + no_id + [ev[2]])  # ev[2] re-sent: a real duplicate
    r = ingest("events")
    assert (r.rows_read, r.rows_written, r.duplicates) == (10, 9, 1)
    assert query("SELECT count(*) FROM events WHERE event_id IS NULL").rows == [(3,)]
    # Sent again in a new file: the events with an id are dropped, those without cannot be told
    # apart from new ones and are kept (docs/lake.md, "Events without an id").
    local_env.put("b.jsonl", [ev[3]] + no_id[:1])
    r = ingest("events")
    assert (r.rows_read, r.rows_written) == (2, 1)
    assert query("SELECT count(*) FROM events WHERE event_id IS NULL").rows == [(4,)]
    assert query("SELECT count(*), count(DISTINCT event_id) FROM events WHERE event_id IS NOT NULL"
                 ).rows == [(6, 6)]


def test_a_raw_field_named_like_a_reader_column_is_data(local_env):
    ev = [dict(e, filename=f"upload-{i}.csv", __file="x", __rn=i) for i, e in enumerate(make_events(5))]
    local_env.put("a.jsonl", ev + ev[:2])
    r = ingest("events")
    assert (r.rows_read, r.rows_written) == (7, 5)
    rows = query('SELECT event_id, filename, "__file", "__rn" FROM events ORDER BY event_id').rows
    assert rows == [(e["event_id"], e["filename"], "x", e["__rn"]) for e in ev]


def test_null_partition_reads_back_as_null_apart_from_the_literal_string(local_env):
    local_env.write_config(partition_by=["dt", "city"])
    ev = make_events(6)
    cities = [None, None, "__HIVE_DEFAULT_PARTITION__", "NULL", "", "pune"]
    ev = [dict(e, city=c, ts="2021-03-01T10:00:00Z") for e, c in zip(ev, cities)]
    del ev[1]["city"]  # missing reads as NULL too
    local_env.put("a.jsonl", ev)
    ingest("events")
    got = query("SELECT city, count(*) FROM events GROUP BY city ORDER BY city NULLS FIRST").rows
    assert got == [(None, 2), ("", 1), ("NULL", 1), ("__HIVE_DEFAULT_PARTITION__", 1), ("pune", 1)]
    folders = sorted({k.split("/")[1] for k in local_env.data_keys()})
    assert "city=__HIVE_DEFAULT_PARTITION__" in folders
    assert len(folders) == 5  # NULL, '', 'NULL', the literal and 'pune' never share a folder
    # Ingesting the same events again adds nothing: NULL partitions match in the anti-join.
    local_env.put("b.jsonl", ev)
    assert ingest("events").rows_written == 0


def test_query_can_read_local_files_unless_files_are_off(local_env, tmp_path):
    local_env.put("a.jsonl", make_events(3))
    ingest("events")
    secret = tmp_path / "secret.csv"
    secret.write_text("k\nhunter2\n")
    # The CLI user's SQL runs with their rights (documented), the library can switch it off.
    assert query(f"SELECT * FROM read_csv('{secret}')").rows == [("hunter2",)]
    with pytest.raises(InputError) as e:
        query(f"SELECT * FROM read_csv('{secret}')", files=False)
    assert "hunter2" not in str(e.value)
    with pytest.raises(InputError):
        query(f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'", files=False)
    assert not (tmp_path / "out.csv").exists()
    assert query("SELECT count(*) FROM events", files=False).rows == [(3,)]


@pytest.mark.parametrize("names", [("a*.jsonl", "ab.jsonl"), ("b[1].jsonl", "b1.jsonl"), ("c?.jsonl", "cd.jsonl")])
def test_raw_file_names_are_literal_never_globs(lake_env, names):
    ev = make_events(4)
    lake_env.put(names[0], ev[:1])
    lake_env.put(names[1], ev[1:4])
    r = ingest("events")
    assert (r.raw_files, r.rows_read, r.rows_written) == (2, 4, 4)  # each file read exactly once
