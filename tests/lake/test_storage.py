"""Per-dataset Parquet codec and sort order (issue 19.5)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from shipyard.errors import ConfigError
from shipyard.lake.ingest import ingest
from shipyard.lake.ops import compact, query

from .conftest import make_events


@pytest.mark.parametrize("codec", ["snappy", "zstd"])
def test_compression_and_sort_by_are_what_the_files_hold(local_env, codec):
    local_env.write_config(compression=codec, sort_by=["user_id", "ts"])
    ev = make_events(300, days=1)
    local_env.put("a.jsonl", ev[:150])
    local_env.put("b.jsonl", ev[150:])
    ingest("events")
    for key in local_env.data_keys():
        meta = pq.ParquetFile(local_env.lake.local_path(key)).metadata
        assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {codec.upper()}
        t = pq.read_table(local_env.lake.local_path(key), columns=["user_id", "ts"]).to_pylist()
        assert t == sorted(t, key=lambda r: (r["user_id"], r["ts"]))
    local_env.put("c.jsonl", make_events(50, days=1, prefix="n"))
    ingest("events")
    compact("events")  # the rewritten files keep the codec and the order
    (key,) = local_env.data_keys()
    meta = pq.ParquetFile(local_env.lake.local_path(key)).metadata
    assert meta.row_group(0).column(0).compression == codec.upper()
    assert query("SELECT count(*) FROM events").rows == [(350,)]


def test_an_unknown_codec_is_refused_before_any_io(local_env):
    local_env.write_config(compression="lz5")
    with pytest.raises(ConfigError, match="compression must be 'snappy' or 'zstd'"):
        ingest("events")
