"""Firehose-shaped raw zones (issue 19.1): keys without extension, `.gz`, records concatenated
with no delimiter, YYYY/MM/DD/HH/ and dynamic-partitioning prefixes; an unreadable object is
reported and kept."""

from __future__ import annotations

import gzip
import json

import pytest

from shipyard.errors import InputError
from shipyard.lake.ingest import ingest
from shipyard.lake.ops import query, stats

from .conftest import make_events


def _concat(events: list[dict]) -> bytes:
    return "".join(json.dumps(e) for e in events).encode()  # no delimiter at all


def test_every_firehose_naming_and_delimiting_form(lake_env):
    ev = make_events(60)
    h = "2026/11/30/07/"
    lake_env.raw.put(h + "app-events-1-2026-11-30-07-00-00-0a1b2c3d", _concat(ev[:10]))
    lake_env.raw.put(h + "app-events-1-2026-11-30-07-15-00-4e5f6a7b.gz", gzip.compress(_concat(ev[10:20])))
    lake_env.raw.put("2026/11/30/08/app-events-1-2026-11-30-08-00-00-c0ffee00",  # gzip, no extension
                     gzip.compress(b"\n".join(json.dumps(e).encode() for e in ev[20:30])))
    # dynamic partitioning: a prefix per key value, then the time prefix
    lake_env.raw.put("tenant=acme/2026/11/30/09/app-events-2-2026-11-30-09-00-00-1234",
                     (json.dumps(ev[30]) + " " + json.dumps(ev[31]) + "\r\n" + _concat(ev[32:40]).decode()).encode())
    lake_env.raw.put("tenant=zeta/2026/11/30/09/app-events-2-2026-11-30-09-00-00-5678.gz",
                     gzip.compress(_concat(ev[40:60] + ev[:5])))  # 5 re-sent
    lake_env.raw.put("2026/11/30/09/.app-events-upload.tmp", b"{")  # an upload in progress
    r = ingest("events")
    assert (r.raw_files, r.rows_read, r.rows_written, r.duplicates) == (5, 65, 60, 5)
    assert query("SELECT count(DISTINCT event_id), count(*) FROM events").rows == [(60, 60)]


@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_an_unreadable_object_is_reported_and_kept(local_env, policy):
    local_env.write_config(on_bad_file=policy)
    local_env.raw.put("2026/11/30/07/good", _concat(make_events(5)))
    local_env.raw.put("2026/11/30/07/junk", b"\x89PNG\r\n\x1a\n" + bytes(200))
    local_env.raw.put("2026/11/30/07/broken.gz", gzip.compress(_concat(make_events(3)))[:40])
    if policy == "fail":
        with pytest.raises(InputError) as e:
            ingest("events")
        msg = str(e.value)
        assert "2026/11/30/07/junk" in msg and "not JSON" in msg and "broken.gz" in msg
        assert local_env.manifest_bytes() is None
    else:
        r = ingest("events")
        assert r.rows_written == 5
        assert set(r.rejected) == {"2026/11/30/07/junk", "2026/11/30/07/broken.gz"}
        assert set(stats("events").rejected) == set(r.rejected)
        assert ingest("events").raw_files == 0  # recorded: not re-read until it changes
    assert local_env.raw.exists("2026/11/30/07/junk") and local_env.raw.exists("2026/11/30/07/broken.gz")
