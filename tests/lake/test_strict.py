"""One-pass typing (lake/strict.py): types from each part's first rows, proved by one strict read.

Every case ingests the same raw files twice, into two lakes: once with the one-pass typing
(the default) and once with `fast_typing = false` (DuckDB's detection over every row, the old
way), and checks that both lakes hold the same schema and the same rows. The misfits sit past
the sampled rows, so only the strict read can catch them: when it does, the batch is typed the
old way (`full_detection` says why) and still lands exactly as full detection types it.
"""

from __future__ import annotations

import gzip
import json

import duckdb
import pytest

from shipyard.lake import strict
from shipyard.lake.ingest import ingest
from shipyard.lake.manifest import read_manifest
from shipyard.settings import get_settings

from .conftest import LakeEnv, dumps, make_events

N = strict.SAMPLE_ROWS + 500  # rows per file: the last 500 are never sampled
LATE = N - 3


def _events(n: int = N) -> list[dict]:
    out = make_events(n, days=2)
    for i, e in enumerate(out):
        e["price"] = 9.5 if i % 2 else 10  # ints and floats: DOUBLE
        e["vip"] = i % 3 == 0
        e["seen_at"] = e["ts"]
        e["day"] = e["ts"][:10]
        e["local"] = e["ts"][:19].replace("T", " ")  # a time without a zone
        e["tags"] = ["a", "b"][: i % 3]
        e["note"] = None  # null in every sampled row
        e["cart"] = [{"sku": f"s{i % 7}", "qty": i % 4}] if i % 5 else []
    return out


def _both(tmp_path, monkeypatch, files: dict[str, bytes]) -> tuple:
    """(fast result, full result, fast lake, full lake) for the same raw files."""
    out = []
    for mode in ("true", "false"):
        monkeypatch.setenv("SHIPYARD_LAKE__FAST_TYPING", mode)
        (tmp_path / mode).mkdir()
        env = LakeEnv(str(tmp_path / mode / "bucket"), tmp_path / mode)
        monkeypatch.chdir(tmp_path / mode)
        monkeypatch.setenv("SHIPYARD_CONFIG", str(tmp_path / mode / "shipyard.toml"))
        get_settings(fresh=True)
        for name, data in files.items():
            env.raw.put(name, data)
        res = ingest("events")
        m = read_manifest(env.lake, "events")
        rows = env.rows("SELECT * FROM events ORDER BY event_id")
        out.append((res, m.schema, rows))
    monkeypatch.delenv("SHIPYARD_LAKE__FAST_TYPING")
    get_settings(fresh=True)
    return out[0], out[1]


def test_a_clean_batch_is_typed_in_one_pass_exactly_as_full_detection(tmp_path, monkeypatch):
    files = {"a.jsonl": dumps(_events()), "b.jsonl": dumps(make_events(300, seed=2, prefix="f"))}
    (fast, fast_schema, fast_rows), (full, full_schema, full_rows) = _both(tmp_path, monkeypatch, files)
    assert fast.full_detection == []
    assert "stage + sample" in fast.phases and "stage + detect" not in fast.phases
    assert "stage + detect" in full.phases and "stage + sample" not in full.phases
    assert fast_schema == full_schema
    assert fast_schema["price"] == "DOUBLE" and fast_schema["vip"] == "BOOLEAN"
    assert fast_schema["cart"] == {"list": {"struct": {"sku": "VARCHAR", "qty": "BIGINT"}}}
    assert "note" not in fast_schema  # null everywhere: no column, as full detection does
    assert fast_rows == full_rows and len(fast_rows) == N + 300
    assert (fast.rows_read, fast.rows_written) == (full.rows_read, full.rows_written)


LATE_MISFITS = {
    "a float in a whole-number column": {"amount": 2.5},
    "true in a whole-number column": {"amount": True},
    "a string of digits in a whole-number column": {"amount": "12"},
    "an exponent in a whole-number column": {"amount": 1e3},
    "a number too big for BIGINT": {"amount": 2 ** 70},
    "a string in a float column": {"price": "9.5"},
    "a number in a boolean column": {"vip": 1},
    "a new top-level key": {"coupon": "WELCOME10"},
    "a new key inside a struct": {"device": {"os": "ios", "version": 12, "model": "iPhone 15"}},
    "a new key inside a list of structs": {"cart": [{"sku": "s1", "qty": 1, "gift": True}]},
    "a float inside a list of structs": {"cart": [{"sku": "s1", "qty": 1.5}]},
    "a text that is not a time in a time column": {"seen_at": "soon"},
    "a date in another shape in a date column": {"day": "21-03-01"},
    "a time with a zone in a time column without": {"local": "2021-03-01 10:00:00+02"},
    "a value in a key null in every sampled row": {"note": "call back"},
    "an object where a scalar was": {"vip": {"level": 2}},
    "a scalar where a struct was": {"device": "ios"},
}


@pytest.mark.parametrize("change", list(LATE_MISFITS.values()), ids=list(LATE_MISFITS))
def test_a_late_misfit_is_caught_and_the_batch_typed_over_every_row(tmp_path, monkeypatch, change):
    ev = _events()
    ev[LATE].update(change)
    (fast, fast_schema, fast_rows), (full, full_schema, full_rows) = _both(
        tmp_path, monkeypatch, {"a.jsonl": dumps(ev)})
    assert fast.full_detection, "the strict read let a misfit through"
    assert "--debug" not in fast.full_detection[0]  # a reason of our own, not DuckDB's text
    assert full.full_detection == []
    assert fast_schema == full_schema
    assert fast_rows == full_rows
    key = next(iter(change))
    assert key in fast_schema  # the late value's column is kept, not dropped


def test_dates_in_another_format_are_read_as_full_detection_reads_them(tmp_path, monkeypatch):
    ev = _events()
    for e in ev:
        e["day"] = e["ts"][2:10]  # 21-03-01: DuckDB's detection reads it as %y-%m-%d (2021)
    (fast, fast_schema, fast_rows), (_, full_schema, full_rows) = _both(
        tmp_path, monkeypatch, {"a.jsonl": dumps(ev)})
    assert fast.full_detection  # the probe cannot carry the format: the old way reads them
    assert fast_schema["day"] == full_schema["day"] == "DATE"
    assert fast_rows == full_rows


def test_a_time_field_missing_from_every_sampled_row_is_found_the_old_way(tmp_path, monkeypatch):
    ev = _events()
    for e in ev[:LATE]:
        e["seen"] = e.pop("ts")  # the configured time field appears only past the samples
    (fast, fast_schema, fast_rows), (_, full_schema, full_rows) = _both(
        tmp_path, monkeypatch, {"a.jsonl": dumps(ev)})
    assert fast.full_detection == ["a configured column is not in the sampled rows"]
    assert (fast_schema, fast_rows) == (full_schema, full_rows) and len(fast_rows) == N


def test_a_declared_uuid_column_stays_on_the_one_pass_path(tmp_path, monkeypatch):
    ev = _events(300)
    files = {"a.jsonl": dumps(ev)}
    out = []
    for mode in ("true", "false"):
        monkeypatch.setenv("SHIPYARD_LAKE__FAST_TYPING", mode)
        (tmp_path / mode).mkdir()
        env = LakeEnv(str(tmp_path / mode / "bucket"), tmp_path / mode, columns={"user_id": "UUID"})
        monkeypatch.setenv("SHIPYARD_CONFIG", str(tmp_path / mode / "shipyard.toml"))
        get_settings(fresh=True)
        env.raw.put("a.jsonl", files["a.jsonl"])
        out.append((ingest("events"), read_manifest(env.lake, "events").schema, env.rows()))
    get_settings(fresh=True)
    (fast, fast_schema, fast_rows), (_, full_schema, full_rows) = out
    assert fast.full_detection == [] and fast_schema["user_id"] == full_schema["user_id"] == "UUID"
    assert fast_rows == full_rows


def test_records_concatenated_with_no_delimiter_are_split_one_per_line(tmp_path, monkeypatch):
    """Firehose's default output (`}{`, no newline) stays on the one-pass path: each part is
    rewritten one record per line first, and lands exactly as full detection reads it."""
    ev = _events(1200)
    for i, e in enumerate(ev):
        e["memo"] = ["x}{y", "caf\u00e9 \"quoted\"", 1.50, 1e3, {"k": [1, 2]}, "é"][i % 6]  # mixed: text
    concatenated = "".join(json.dumps(e) for e in ev).encode()
    lines = dumps(ev[600:])
    (fast, fast_schema, fast_rows), (_, full_schema, full_rows) = _both(
        tmp_path, monkeypatch, {"a": concatenated, "b.gz": gzip.compress(lines)})
    assert fast.full_detection == []
    assert fast_schema["memo"] == full_schema["memo"] == "VARCHAR"
    assert (fast_schema, fast_rows) == (full_schema, full_rows) and len(fast_rows) == 1200


def test_pretty_printed_records_go_the_old_way(tmp_path, monkeypatch):
    ev = _events()
    data = "\n".join(json.dumps(e, indent=2) for e in ev).encode()
    (fast, fast_schema, fast_rows), (_, full_schema, full_rows) = _both(
        tmp_path, monkeypatch, {"a.json": data})
    assert fast.full_detection == ["records that are not one JSON object per line"]
    assert (fast_schema, fast_rows) == (full_schema, full_rows) and len(fast_rows) == N


def test_copies_of_an_id_that_differ_keep_the_first_file(tmp_path, monkeypatch):
    ev = _events(20)
    files = {"a.jsonl": dumps(ev), "b.jsonl": dumps([dict(ev[0], amount=777)])}
    (fast, _, fast_rows), (_, _, full_rows) = _both(tmp_path, monkeypatch, files)
    assert any("different content" in why for why in fast.full_detection)
    assert fast_rows == full_rows
    # identical re-sent copies need no file order: they stay on the one-pass path
    files = {"a.jsonl": dumps(ev), "b.jsonl": dumps(ev[:5])}
    (tmp_path / "again").mkdir()
    (fast, _, fast_rows), (_, _, full_rows) = _both(tmp_path / "again", monkeypatch, files)
    assert fast.full_detection == [] and fast.duplicates == 5
    assert fast_rows == full_rows


def test_duckdb_refuses_unknown_keys_in_a_single_file_read(tmp_path):
    """What the strict read rests on: with detection on and every column read, DuckDB refuses
    a key it did not detect, at any depth (and only reading one file: hence strict.join)."""
    probe = {"a": {}, "s": {"x": {}}}
    for late in ({"a": 1, "zz": 1}, {"a": 1, "s": {"x": 1, "y": 2}}):
        path = tmp_path / "one.json"
        path.write_text(json.dumps(probe) + "\n" + json.dumps({"a": 1, "s": {"x": 2}}) + "\n"
                        + json.dumps(late) + "\n")
        with pytest.raises(duckdb.Error, match="unknown key"):
            duckdb.sql(f"SELECT * FROM {strict.read_sql(str(path))}").fetchall()


def test_a_schema_too_wide_for_the_probe_goes_the_old_way():
    with pytest.raises(strict.NotStrict):
        strict.probe_line({f"k{i}": "VARCHAR" for i in range(200_000)}, "m")
    with pytest.raises(strict.NotStrict):
        strict.probe_line({"m": {"map": ["VARCHAR", "BIGINT"]}}, "x")


def test_ingest_says_how_it_typed_the_batch(local_env):
    from typer.testing import CliRunner

    from shipyard.cli import app

    ev = _events()
    local_env.put("a.jsonl", ev[:100])
    r = CliRunner().invoke(app, ["lake", "ingest", "events"])
    assert r.exit_code == 0, r.output
    assert "sampled, proved by one strict read" in r.output
    ev[LATE]["coupon"] = "WELCOME10"  # past the sampled rows of b.jsonl
    local_env.put("b.jsonl", ev[100:])
    r = CliRunner().invoke(app, ["lake", "ingest", "events", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    assert out["one_pass"] and out["full_detection"] == ["a key the sampled rows do not have ('coupon')"]
    assert "WELCOME10" not in r.output  # DuckDB's message quotes the record; ours does not
    assert out["new_columns"] == ["coupon"]
    # A late misfit against the lake's schema: the old way names its file and line.
    late = make_events(N, seed=3, prefix="g")
    late[LATE]["amount"] = 2.5
    local_env.put("c.jsonl", late)
    r = CliRunner().invoke(app, ["lake", "ingest", "events"])
    assert r.exit_code != 0
    assert f"c.jsonl, line {LATE + 1}: field 'amount' is BIGINT in the lake but DOUBLE here" in str(r.exception)
    # ... and an early one, which the samples see: named the same way
    local_env.raw.delete("c.jsonl")
    late[LATE]["amount"], late[5]["amount"] = 1, 7.5
    local_env.put("d.jsonl", late)
    r = CliRunner().invoke(app, ["lake", "ingest", "events"])
    assert r.exit_code != 0
    assert "d.jsonl, line 6: field 'amount' is BIGINT in the lake but DOUBLE here" in str(r.exception)


def test_parts_on_another_filesystem_are_joined_through_a_buffer(local_env, monkeypatch):
    """copy_file_range refuses to cross filesystems (EXDEV): a local raw zone elsewhere than
    the temp folder is read in place, then copied the slow way, and still one pass."""
    import errno
    import os

    def exdev(*_a, **_k):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", exdev)
    local_env.put("a.jsonl", _events(300))
    local_env.put("b.jsonl", dumps(_events(300))[:-1])  # no newline at the end: one is added
    r = ingest("events")
    assert r.full_detection == [] and (r.rows_read, r.rows_written) == (600, 300)
