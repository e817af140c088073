"""Issue 10, on every engine: a file name is that one file, never a pattern; "succeeded" means the
data arrived; decompression is bounded."""

from __future__ import annotations

import gzip
import json
from functools import lru_cache

import pytest


@lru_cache(maxsize=None)
def _gzip_of_zeros(n: int) -> bytes:
    return gzip.compress(b"id,name,amount\n" + b"\0" * n, 1)


def test_glob_characters_in_a_name_are_literal(h):
    """`a*.csv` and `b[1].jsonl` are read as exactly those files (DuckDB's readers glob a path)."""
    h.create()
    h.put("orders", "input/load", "a1.csv", "id,name\n1,not me\n")  # what a* would also match
    h.put("orders", "input/load", "b1.jsonl", '{"id": 3, "name": "not me"}\n')  # what b[1] would match
    o = h.run("orders", "input/load", "a*.csv", "id,name\n2,star\n")
    assert o.status == "succeeded" and o.rows == 1, o
    o = h.run("orders", "input/load", "b[1].jsonl", '{"id": 4, "name": "brackets"}\n')
    assert o.status == "succeeded" and o.rows == 1, o
    assert h.dest.rows("orders", "id, name") == [(2, "star"), (4, "brackets")]
    assert h.store.exists(h.dest.key("orders", "input/load", "a1.csv"))


def test_a_file_that_yields_no_rows_fails(h):
    """A header and 40 MiB of NUL bytes: DuckDB's CSV reader returns zero rows for it (a line
    past its buffer), and the file was archived as succeeded (DuckDB, MySQL). Data that does not
    arrive is a failure, with a report, on every engine."""
    h.create()
    o = h.run("orders", "input/load", "zeros.csv", b"id,name,amount\n" + b"\0" * (40 << 20))
    assert o.status == "failed", o
    assert h.report(o)["how_to_fix"] and h.dest.rows("orders") == []
    assert h.dest.query("SELECT count(*) FROM _shipyard_ledger WHERE status = 'succeeded'")[0][0] == 1  # the create


def test_a_decompression_bomb_is_refused_with_flat_memory(h):
    """200 MiB of zeros in a ~200 KB gzip: refused after 16 MiB of output (limits.max_expansion_ratio)."""
    h.create()
    o = h.run("orders", "input/update", "bomb.csv.gz", _gzip_of_zeros(200 << 20))
    assert o.status == "failed", o
    report = h.report(o)
    assert "decompression bomb" in report["what"], report
    assert "MAX_EXPANSION_RATIO" in report["how_to_fix"]
    assert h.dest.rows("orders") == []


@pytest.mark.parametrize("dest", ["duckdb"], indirect=True)
def test_the_decompressed_size_cap_is_a_setting(h, monkeypatch):
    from shipyard.settings import get_settings

    monkeypatch.setenv("SHIPYARD_LIMITS__MAX_DECOMPRESSED_BYTES", "1000")
    h.p.settings = get_settings(fresh=True)
    h.create()
    o = h.run("orders", "input/load", "big.csv.gz", gzip.compress(b"id\n" + b"1\n" * 1000))
    assert o.status == "failed" and "passed the limit" in h.report(o)["what"], o
    assert json.dumps(h.report(o)).count("LIMITS__MAX_DECOMPRESSED_BYTES") == 1
