"""Glue registration on moto and what Athena reads (issue 19.2): the symlink listings that the
Glue partitions point at name only committed files, during an ingest and during a compaction."""

from __future__ import annotations

import signal

import duckdb
from typer.testing import CliRunner

from shipyard.aws import client
from shipyard.cli import app
from shipyard.lake.glue import INPUT_FORMAT
from shipyard.lake.ingest import ingest
from shipyard.lake.ops import compact
from shipyard.lake.publish import CRASH_ENV

from .conftest import LakeEnv, make_events
from .test_crash import _run_cli


def athena_rows(lake_env: LakeEnv, db: str = "analytics", table: str = "events") -> list[tuple]:
    """Read the table as Athena does: Glue's partitions -> each location's `manifest` listing
    -> exactly the Parquet files it names (with the partition values from Glue)."""
    glue = client("glue")
    t = glue.get_table(DatabaseName=db, Name=table)["Table"]
    assert t["StorageDescriptor"]["InputFormat"] == INPUT_FORMAT
    rows = []
    con = duckdb.connect()
    for p in glue.get_partitions(DatabaseName=db, TableName=table)["Partitions"]:
        loc = p["StorageDescriptor"]["Location"]
        prefix = lake_env.lake.uri("x")[:-1]
        assert loc.startswith(prefix)
        with lake_env.lake.open(loc[len(prefix):] + "manifest") as f:
            uris = f.read().decode().split()
        for uri in uris:
            assert lake_env.lake.exists(uri[len(prefix):]), uri  # never a file that is gone
            with lake_env.lake.open(uri[len(prefix):]) as f:
                data = f.read()
            path = lake_env.tmp / "athena.parquet"
            path.write_bytes(data)
            rows += [r + tuple(p["Values"]) for r in con.execute(
                f"SELECT event_id, user_id FROM read_parquet('{path}')").fetchall()]
    return sorted(rows)


def test_glue_table_partitions_and_a_never_partial_athena_view(s3_bucket, tmp_path):
    env = LakeEnv(s3_bucket, tmp_path)
    ev = make_events(300, days=3)
    env.put("a.jsonl", ev[:150])
    ingest("events")
    r = CliRunner().invoke(app, ["lake", "register", "events", "--glue-database", "analytics"])
    assert r.exit_code == 0, r.output
    glue = client("glue")
    t = glue.get_table(DatabaseName="analytics", Name="events")["Table"]
    cols = {c["Name"]: c["Type"] for c in t["StorageDescriptor"]["Columns"]}
    assert cols["device"] == "struct<os:string,version:bigint>" and cols["amount"] == "bigint"
    assert [k["Name"] for k in t["PartitionKeys"]] == ["dt"]
    committed = athena_rows(env)
    assert len(committed) == 150 and {r[2] for r in committed} == {e["ts"][:10] for e in ev[:150]}

    # From now on every commit keeps Glue in step by itself.
    env.write_config(glue_database="analytics")
    # An ingest killed after publishing files, before its commit: Athena sees the old state.
    env.put("b.jsonl", [dict(e, tags=["x"]) for e in ev[100:]])  # a new column too
    p = _run_cli("lake", "ingest", "events", env_extra={CRASH_ENV: "2"})
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert athena_rows(env) == committed
    ingest("events")
    after = athena_rows(env)
    assert len(after) == 300 and len({r[0] for r in after}) == 300
    t = glue.get_table(DatabaseName="analytics", Name="events")["Table"]
    assert "tags" in {c["Name"] for c in t["StorageDescriptor"]["Columns"]}  # schema evolution

    # A compaction killed mid-way: still exactly the committed rows, no duplicates.
    p = _run_cli("lake", "compact", "events", env_extra={CRASH_ENV: "1"})
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert athena_rows(env) == after
    compact("events")
    assert athena_rows(env) == after  # the listing names the compacted files only
