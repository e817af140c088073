"""Ingest on both stores: partitions, snappy, dedupe (batch, lake, re-ingest), gzip, retention."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from shipyard.lake.ingest import ingest
from shipyard.lake.ops import query, stats

from .conftest import dumps, make_events


def test_ingest_partitions_and_dedupes(lake_env):
    events = make_events(300)
    dups = events[:15]  # re-sent by the app: same ids, same content
    lake_env.put("2021/03/01/a.jsonl", events[:200] + dups)
    lake_env.put("2021/03/02/b.jsonl.gz", events[200:] + events[100:110], gz=True)

    r = ingest("events")
    assert r.raw_files == 2
    assert r.rows_read == 325
    assert r.rows_written == 300 and r.duplicates == 25

    got = query("SELECT count(*), count(DISTINCT event_id) FROM events").rows[0]
    assert got == (300, 300)
    # Hive-style day folders, one per event date (UTC), snappy Parquet without the dt column.
    keys = lake_env.data_keys()
    assert {k.split("/")[0] for k in keys} == {"dt=2021-03-01", "dt=2021-03-02", "dt=2021-03-03"}
    by_day = dict(query("SELECT dt, count(*) FROM events GROUP BY dt").rows)
    expected: dict[str, int] = {}
    for e in events:
        expected[e["ts"][:10]] = expected.get(e["ts"][:10], 0) + 1
    assert by_day == expected
    if lake_env.lake.local_path(keys[0]) is not None:
        meta = pq.ParquetFile(lake_env.lake.local_path(keys[0])).metadata
        assert meta.row_group(0).column(0).compression == "SNAPPY"
        assert "dt" not in pq.ParquetFile(lake_env.lake.local_path(keys[0])).schema_arrow.names
    # Typed: nested struct, timestamp, integer.
    row = query("SELECT typeof(ts), typeof(amount), device.os FROM events LIMIT 1").rows[0]
    assert row[0] == "TIMESTAMP WITH TIME ZONE" and row[1] == "BIGINT" and row[2] in ("ios", "android")


def test_reingest_is_idempotent(lake_env):
    events = make_events(120)
    lake_env.put("a.jsonl", events[:80])
    ingest("events")
    before = lake_env.manifest_bytes()
    keys = lake_env.data_keys()

    # Same files again: nothing read, nothing written, manifest untouched.
    r = ingest("events")
    assert r.raw_files == 0 and r.rows_written == 0
    assert lake_env.manifest_bytes() == before and lake_env.data_keys() == keys

    # A new file that repeats half of what the lake has: only the new events land.
    lake_env.put("b.jsonl", events[40:120])
    r = ingest("events")
    assert r.rows_read == 80 and r.rows_written == 40 and r.duplicates == 40
    assert query("SELECT count(*), count(DISTINCT event_id) FROM events").rows[0] == (120, 120)

    # The same key rewritten with other content of the same size: read again (S3 by its ETag,
    # a folder by its size only), its known events dropped.
    if lake_env.lake.local_path("x") is None:
        swapped = events[40:120]
        swapped[0], swapped[1] = swapped[1], swapped[0]
        lake_env.put("b.jsonl", swapped)
        r = ingest("events")
        assert r.raw_files == 1 and r.rows_written == 0 and r.duplicates == 80

    # The same raw file uploaded again under another name: all duplicates.
    lake_env.put("b-copy.jsonl", events[40:120])
    r = ingest("events")
    assert r.rows_written == 0 and r.duplicates == 80
    assert query("SELECT count(*) FROM events").rows[0][0] == 120


def test_stats_counts_and_compression(lake_env):
    lake_env.put("a.jsonl", make_events(500))
    ingest("events")
    s = stats("events")
    assert s.rows == 500 and s.raw_files == 1
    assert sum(p.rows for p in s.partitions) == 500
    assert [p.partition for p in s.partitions] == ["dt=2021-03-01", "dt=2021-03-02", "dt=2021-03-03"]
    assert s.lake_bytes == sum(i.size for i in lake_env.lake.list("") if i.key.endswith(".parquet"))
    assert s.compression == s.raw_bytes / s.lake_bytes


def test_other_partitions_and_retention(local_env):
    local_env.write_config(partition_by=["dt", "hour", "type", "bucket(user_id, 4)"],
                           raw_retention_days=0, sort_by=["user_id"])
    events = make_events(200, days=1)
    local_env.put("a.jsonl", events)
    r = ingest("events")
    assert r.rows_written == 200 and r.raw_deleted == 1
    assert not local_env.raw.exists("a.jsonl")  # retention: ingested raw files go
    k = local_env.data_keys()[0]
    assert [s.split("=")[0] for s in k.split("/")[:-1]] == ["dt", "hour", "type", "user_id_bucket"]
    rows = query("SELECT DISTINCT hour, type, user_id_bucket FROM events").rows
    assert {r[1] for r in rows} == {"open", "tap", "pay"}
    assert {int(r[2]) for r in rows} <= {0, 1, 2, 3}
    # A user's rows all sit in one bucket.
    assert query("SELECT max(n) FROM (SELECT user_id, count(DISTINCT user_id_bucket) n "
                 "FROM events GROUP BY user_id)").rows[0][0] == 1
    # `type` is a partition column, text from the path; it is not duplicated in the files.
    assert query("SELECT count(*) FROM events WHERE type = 'pay'").rows[0][0] == sum(
        e["type"] == "pay" for e in events)
    # Re-ingest after the raw files were deleted: nothing happens.
    assert ingest("events").rows_written == 0


def test_epoch_times_and_renames(local_env):
    local_env.write_config(time="at", time_unit="ms", rename={"when": "at", "evt": "event_id"},
                           id=["event_id"])
    local_env.put("a.jsonl", [{"evt": "x1", "when": 1614556800000, "v": 1},
                              {"evt": "x2", "when": 1614643200500, "v": 2}])
    ingest("events")
    assert query("SELECT event_id, dt FROM events ORDER BY 1").rows == [
        ("x1", "2021-03-01"), ("x2", "2021-03-02")]


def test_blank_files_and_crlf_lines(local_env):
    local_env.put("empty.jsonl", b"")
    local_env.put("blank.jsonl.gz", b"\n\n", gz=True)
    r = ingest("events")
    assert r.rows_written == 0 and local_env.data_keys() == []
    events = make_events(3)
    local_env.put("crlf.jsonl", b"".join(dumps([e]).rstrip(b"\n") + b"\r\n" for e in events))
    r = ingest("events")
    assert r.raw_files == 1 and r.rows_written == 3  # the blank files were checkpointed
    assert query("SELECT count(*) FROM events").rows == [(3,)]


def test_the_first_file_of_a_batch_wins_and_resent_ids_keep_the_lake_version(local_env):
    ev = make_events(4)
    local_env.put("a.jsonl", [dict(ev[0], amount=1), ev[1]])
    local_env.put("b.jsonl", [dict(ev[0], amount=2), dict(ev[1], amount=2), ev[2]])
    r = ingest("events")
    assert (r.rows_read, r.rows_written, r.duplicates) == (5, 3, 2)
    assert query("SELECT event_id, amount FROM events WHERE event_id = 'e000000'").rows == [("e000000", 1)]
    assert query("SELECT amount FROM events WHERE event_id = 'e000001'").rows == [(ev[1]["amount"],)]
    local_env.put("c.jsonl", [dict(ev[0], amount=3), ev[3]])
    r = ingest("events")
    assert (r.rows_read, r.rows_written) == (2, 1)
    assert query("SELECT amount FROM events WHERE event_id = 'e000000'").rows == [(1,)]


def _spoil_all_but(path, keep: str) -> None:
    """Overwrite the data pages of every column but `keep` with garbage (the footer stays)."""
    meta = pq.ParquetFile(path).metadata
    with open(path, "r+b") as f:
        for rg in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                col = meta.row_group(rg).column(c)
                if col.path_in_schema.split(".")[0] == keep:
                    continue
                start = min(o for o in (col.dictionary_page_offset, col.data_page_offset) if o)
                f.seek(start)
                f.write(b"\xff" * col.total_compressed_size)


def test_the_anti_join_reads_only_the_id_column_of_the_touched_partitions(local_env):
    ev = make_events(60, days=3)
    local_env.put("a.jsonl", ev)
    ingest("events")
    day1 = [e for e in ev if e["ts"].startswith("2021-03-01")]
    keys = local_env.data_keys()
    touched = [k for k in keys if k.startswith("dt=2021-03-01/")]
    for k in keys:
        path = local_env.lake.local_path(k)
        if k in touched:
            _spoil_all_but(path, "event_id")  # only the ids still readable
        else:
            path.write_bytes(b"not parquet at all")  # untouched partitions: never opened
    with pytest.raises(Exception):  # the spoiling is real: a full read fails
        pq.read_table(local_env.lake.local_path(touched[0]))
    new = dict(day1[0], event_id="new-1")
    local_env.put("b.jsonl", day1 + [new])  # all re-sent but one, all on 2021-03-01
    r = ingest("events")
    assert (r.rows_read, r.rows_written, r.duplicates) == (len(day1) + 1, 1, len(day1))
