"""query (pruning, outputs), compact, ddl, and the CLI's errors."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import sqlglot
from typer.testing import CliRunner
from sqlglot import exp

from shipyard.cli import app
from shipyard.errors import InputError
from shipyard.lake.ingest import ingest
from shipyard.lake.ops import compact, ddl, query

from .conftest import make_events


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shipyard.cli", "lake", *args], env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def test_partition_pruning_never_opens_other_days(lake_env):
    lake_env.put("a.jsonl", make_events(300, days=3))
    ingest("events")
    n_day2 = query("SELECT count(*) FROM events WHERE dt = '2021-03-02'").rows[0][0]
    if lake_env.lake.local_path("x") is not None:
        # Local: DuckDB's read_parquet checks every listed file exists at bind time, so
        # ask its profiler how many it read.
        plan = query("EXPLAIN ANALYZE SELECT count(*) FROM events WHERE dt = '2021-03-02'").rows[0][1]
        assert "Total Files Read: 1" in plan and "Scanning Files: 1/3" in plan
        return
    # S3 (pyarrow dataset): remove the other days' files behind the manifest's back: a query that pruned them
    # still answers; one that did not would fail to open them.
    for k in lake_env.data_keys():
        if not k.startswith("dt=2021-03-02/"):
            lake_env.lake.delete(k)
    assert query("SELECT count(*) FROM events WHERE dt = '2021-03-02'").rows[0][0] == n_day2
    with pytest.raises(InputError):
        query("SELECT count(*) FROM events WHERE dt = '2021-03-01'")


def test_query_outputs_csv_and_parquet(local_env, tmp_path):
    events = make_events(50)
    local_env.put("a.jsonl", events)
    ingest("events")
    p = _cli("query", "SELECT event_id, amount, dt FROM events ORDER BY event_id", "-f", "csv")
    assert p.returncode == 0, p.stderr
    rows = list(csv.reader(io.StringIO(p.stdout)))
    assert rows[0] == ["event_id", "amount", "dt"] and len(rows) == 51
    assert rows[1] == [events[0]["event_id"], str(events[0]["amount"]), events[0]["ts"][:10]]
    out = tmp_path / "out.parquet"
    p = _cli("query", "SELECT * FROM events WHERE amount > 5000", "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert pq.read_table(out).num_rows == sum(e["amount"] > 5000 for e in events)
    p = _cli("query", "SELECT dt, count(*) AS n FROM events GROUP BY dt ORDER BY dt")
    assert p.returncode == 0 and "2021-03-01" in p.stdout and "┃ dt" in p.stdout


def test_compact_merges_small_files(lake_env):
    events = make_events(120, days=2)
    for n in range(4):
        lake_env.put(f"{n}.jsonl", events[n * 30:(n + 1) * 30])
        ingest("events")
    before = lake_env.rows()
    assert len(lake_env.data_keys()) == 8
    r = compact("events")
    assert (r.partitions, r.files_before, r.files_after, r.rows) == (2, 8, 2, 120)
    assert len(lake_env.data_keys()) == 2  # old files deleted after the commit
    assert lake_env.rows() == before
    assert compact("events").partitions == 0  # nothing left to do
    # Dedupe still works against compacted files.
    lake_env.put("again.jsonl", events[:60])
    assert ingest("events").rows_written == 0


def test_ddl_athena_and_trino_parse(lake_env):
    lake_env.put("a.jsonl", make_events(5))
    ingest("events")
    athena = ddl("events", database="analytics")
    tree = sqlglot.parse_one(athena.split(";")[0], read="athena")
    assert isinstance(tree, exp.Create)
    cols = {c.name: c.args["kind"].sql("hive").lower() for c in tree.this.expressions}
    assert cols["amount"] == "bigint" and cols["ts"] == "timestamp"
    assert cols["device"].startswith("struct<os") and "dt" not in cols
    assert "PARTITIONED BY (`dt` string)" in athena and "STORED AS PARQUET" in athena
    loc = lake_env.lake.url if lake_env.lake.url.startswith("s3://") else "file://" + lake_env.lake.url
    assert f"LOCATION '{loc}/'" in athena
    trino = ddl("events", dialect="trino", database="analytics")
    t = sqlglot.parse_one(trino.split(";")[0], read="trino")
    assert isinstance(t, exp.Create)
    names = [c.name for c in t.this.expressions]
    assert names[-1] == "dt" and "partitioned_by = ARRAY['dt']" in trino


def test_cli_errors_are_short(local_env, tmp_path):
    p = _cli("stats", "evnts")
    assert p.returncode == 2 and "did you mean 'events'" in p.stderr and "Traceback" not in p.stderr
    p = _cli("query", "SELECT nope FROM events")
    assert p.returncode == 2 and "query failed" in p.stderr and "Traceback" not in p.stderr
    p = _cli("ddl", "events")
    assert p.returncode == 2 and "no schema yet" in p.stderr
    p = _cli("ingest", "events", "--engine", "flink")
    assert p.returncode == 2 and "unknown engine" in p.stderr
    for cmd in ("list", "ingest", "query", "stats", "compact", "ddl", "forget", "register", "demo"):
        h = CliRunner().invoke(app, ["lake", cmd, "--help"])  # in-process: help needs no fresh process
        assert h.exit_code == 0 and "Usage" in h.output


def test_cli_ingest_and_stats_tables(local_env):
    local_env.put("a.jsonl", make_events(30))
    p = _cli("ingest", "events")
    assert p.returncode == 0, p.stderr
    assert "rows written" in p.stdout and "30" in p.stdout
    p = _cli("stats", "events")
    assert p.returncode == 0 and "dt=2021-03-01" in p.stdout and "compression" in p.stdout
