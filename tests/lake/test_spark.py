"""`--engine spark` and the DuckDB engine write the same lake from the same input."""

from __future__ import annotations

import json

import pytest

from shipyard.lake import spark_job
from shipyard.lake.ingest import ingest
from shipyard.lake.ops import query
from shipyard.settings import get_settings
from shipyard.store import open_store

from .conftest import dumps, make_events


@pytest.mark.slow
def test_spark_and_duckdb_agree(tmp_path, s3_bucket, monkeypatch):
    # Same raw zone, two lakes: DuckDB's on a local folder, Spark's in S3 (staged through the
    # ObjectStore, as a local pyspark has no S3 connector).
    common = ('raw = "raw/events"\nid = ["event_id"]\ntime = "ts"\n'
              'partition_by = ["dt", "bucket(user_id, 3)"]\nsort_by = ["user_id", "ts"]\n')
    (tmp_path / "shipyard.toml").write_text(
        f'[lake.datasets.d]\nlake = "lake/d"\n{common}\n'
        f'[lake.datasets.s]\nlake = "{s3_bucket}/lake/s"\n{common}\n'
        # The cluster path (EMR/Glue): executors read raw/lake URIs and write into the lake's
        # store under _shipyard/staging/, published by server-side moves.
        f'[lake.datasets.u]\nlake = "lake/u"\n{common}\n')
    get_settings(fresh=True)
    raw = open_store(str(tmp_path / "raw" / "events"))
    events = make_events(400, days=2)
    events[7] = dict(events[7], tags=["a", "b"], device={"os": "ios", "version": 14, "model": "x"})
    events[9] = dict(events[9], ts=None)  # no event time: the Hive default partition
    raw.put("a.jsonl", dumps(events[:250] + events[:20]))  # duplicates within the batch
    import gzip
    raw.put("b.jsonl.gz", gzip.compress(dumps(events[240:300])))

    def ingest_u():
        with monkeypatch.context() as mp:
            mp.setenv("SHIPYARD_LAKE__SPARK_PATHS", "uri")
            settings = get_settings(fresh=True)
        get_settings(fresh=True)
        return ingest("u", engine="spark", settings=settings)

    rd = ingest("d", engine="duckdb")
    rs = ingest("s", engine="spark")
    ru = ingest_u()
    assert (rd.rows_read, rd.rows_written) == (rs.rows_read, rs.rows_written) == (330, 300)
    assert (ru.rows_read, ru.rows_written) == (330, 300)

    # A second batch overlapping the lake: the anti-join against touched partitions.
    raw.put("c.jsonl", dumps(events[280:] + [dict(events[0])]))
    rd2, rs2, ru2 = ingest("d", engine="duckdb"), ingest("s", engine="spark"), ingest_u()
    assert (rd2.rows_written, rs2.rows_written, ru2.rows_written) == (100, 100, 100)
    assert rd2.duplicates == rs2.duplicates == ru2.duplicates == 21
    assert not list(open_store(str(tmp_path / "lake" / "u")).list("_shipyard/staging/"))

    cols = "event_id, ts, user_id, type, amount, device, tags, dt, user_id_bucket"
    d = query(f"SELECT {cols} FROM d ORDER BY event_id").rows
    s = query(f"SELECT {cols} FROM s ORDER BY event_id").rows
    assert len(d) == 400 and d == s
    assert query(f"SELECT {cols} FROM u ORDER BY event_id").rows == d
    assert query("SELECT count(*) FROM (SELECT * FROM d EXCEPT SELECT * FROM s)").rows[0][0] == 0
    # Same partitions, and the time-less event is in the default partition for both.
    pd = query("SELECT DISTINCT dt, user_id_bucket FROM d ORDER BY ALL").rows
    assert pd == query("SELECT DISTINCT dt, user_id_bucket FROM s ORDER BY ALL").rows
    assert (None,) in {(r[0],) for r in pd}  # NULL reads back as NULL
    m_d = json.loads((tmp_path / "lake" / "d" / "_shipyard" / "manifest.json").read_text())
    with open_store(f"{s3_bucket}/lake/s").open("_shipyard/manifest.json") as f:
        m_s = json.loads(f.read())
    assert m_d["schema"] == m_s["schema"]
    assert sorted(f["key"].split("/part-")[0] for f in m_d["files"]) == sorted(
        f["key"].split("/part-")[0] for f in m_s["files"])

    # The EMR/Glue entry point (deploy/glue_lake_job.py calls it), config fetched from S3,
    # Glue's own arguments ignored.
    raw.put("d.jsonl", dumps(make_events(30, prefix="j")))
    cfg = (tmp_path / "shipyard.toml").read_text()
    cfg = cfg.replace('"raw/events"', f'"{tmp_path}/raw/events"').replace('"lake/', f'"{tmp_path}/lake/')
    open_store(s3_bucket).put("config/shipyard.toml", cfg.encode())
    monkeypatch.setenv("SHIPYARD_CONFIG", str(tmp_path / "shipyard.toml"))  # restored after the test
    args = ["--dataset", "s", "--config", f"{s3_bucket}/config/shipyard.toml", "--JOB_NAME", "lake"]
    assert spark_job.main(args) == 0
    assert query("SELECT count(*), count(DISTINCT event_id) FROM s").rows == [(430, 430)]
