"""The CLI, through the real `shipyard` entry point: process, plan, schema, watch, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.store import open_store
from tests.helpers import read_outbox, wait_for

D = "destination=duckdb/database=sales/table_name=t/"


def _shipyard(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shipyard.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=os.environ.copy())


def test_process_exit_codes_and_json(tmp_path):
    store = open_store(str(tmp_path / "b"))
    store.put(D + "schema/create/t.json", b'{"column_specification": {"id": "INTEGER"}}')
    store.put(D + "input/load/a.csv", b"id\n1\n")
    r = CliRunner().invoke(app, ["propagator", "process", "--bucket", str(tmp_path / "b"), "--json"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.splitlines() if x.startswith("{")]
    assert [x["status"] for x in lines] == ["succeeded", "succeeded"]
    store.put(D + "input/load/bad.csv", b"id\nnope\n")
    r = _shipyard("propagator", "process", "--bucket", str(tmp_path / "b"))
    assert r.returncode == 1 and "failed" in r.stdout and "Traceback" not in r.stderr
    r = _shipyard("propagator", "process", "--bucket", str(tmp_path / "b"))
    assert r.returncode == 0 and "nothing pending" in r.stdout


def test_plan_prints_sql_and_moves_nothing(tmp_path):
    store = open_store(str(tmp_path / "b"))
    store.put(D + "schema/create/t.json", b'{"column_specification": {"id": "INTEGER", "v": "TEXT"}, "primary_key": "id"}')
    r = CliRunner().invoke(app, ["propagator", "plan", "--bucket", str(tmp_path / "b"), D + "schema/create/t.json"])
    assert r.exit_code == 0, r.output
    assert 'CREATE TABLE "sales"."t" ("id" INT NOT NULL, "v" TEXT, PRIMARY KEY ("id"))' in r.output
    assert "BEGIN;" in r.output and "COMMIT;" in r.output
    assert store.exists(D + "schema/create/t.json")
    CliRunner().invoke(app, ["propagator", "process", "--bucket", str(tmp_path / "b")])
    store.put(D + "input/update/u.csv", b"v,id\nx,1\n")
    r = CliRunner().invoke(app, ["propagator", "plan", "--bucket", str(tmp_path / "b"), D + "input/update/u.csv"])
    assert "ON CONFLICT" in r.output and "read_csv(" in r.output and store.exists(D + "input/update/u.csv")


def test_plan_errors_are_short(tmp_path):
    r = _shipyard("propagator", "plan", "--bucket", str(tmp_path), D + "input/load/../x.csv")
    assert r.returncode == 2 and "'..'" in r.stderr and "Traceback" not in r.stderr
    r = _shipyard("propagator", "plan", "--bucket", str(tmp_path), D + "input/load/missing.csv")
    assert r.returncode == 2 and "not found" in " ".join(r.stderr.split())


def test_schema_command_prints_json_schema():
    r = CliRunner().invoke(app, ["propagator", "schema", "create"])
    assert r.exit_code == 0 and "column_specification" in json.loads(r.output)["properties"]
    r = CliRunner().invoke(app, ["propagator", "schema", "update"])
    assert r.exit_code == 0 and "operation_type" in r.output
    r = _shipyard("propagator", "schema", "delete")
    assert r.returncode == 2 and "schema create" in " ".join(r.stderr.split())


def test_watch_picks_up_new_files_within_a_second_and_survives_bad_ones(tmp_path):
    from shipyard.propagator import Propagator

    store = open_store(str(tmp_path / "b"))
    seen = []
    stop = threading.Event()
    with Propagator.from_settings(str(tmp_path / "b")) as p:
        t = threading.Thread(target=p.watch, kwargs={"interval": 0.2, "stop": stop, "on_outcome": seen.append})
        t.start()
        try:
            store.put(D + "schema/create/t.json", b'{"column_specification": {"id": "INTEGER"}}')
            wait_for(lambda: len(seen) == 1)
            store.put(D + "input/load/bad.csv", b"")
            wait_for(lambda: len(seen) == 2)
            t0 = time.monotonic()
            store.put(D + "input/load/good.csv", b"id\n7\n")
            wait_for(lambda: len(seen) == 3)
            assert time.monotonic() - t0 < 1.0
        finally:
            stop.set()
            t.join(10)
    assert [o.status for o in seen] == ["succeeded", "failed", "succeeded"]


def test_watch_cli_runs_until_interrupted(tmp_path):
    import signal

    store = open_store(str(tmp_path / "b"))
    proc = subprocess.Popen([sys.executable, "-m", "shipyard.cli", "propagator", "watch", "--bucket", str(tmp_path / "b"),
                             "--interval", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    try:
        store.put(D + "schema/create/t.json", b'{"column_specification": {"id": "INTEGER"}}')
        wait_for(lambda: store.exists(D + "succeeded/t.json"), 20)
        store.put(D + "input/load/x.csv", b"id\nbad\n")
        wait_for(lambda: store.exists(D + "failed/x.csv"), 20)
        store.put(D + "input/load/y.csv", b"id\n1\n")
        wait_for(lambda: store.exists(D + "succeeded/y.csv"), 20)
        assert proc.poll() is None  # still running after a bad file
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode in (0, 130), err


def test_demo_runs_twice_cleanly(tmp_path):
    for _ in range(2):
        r = _shipyard("propagator", "demo", cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "demo.orders" in r.stdout and "2026-11-02-orders-bad" in r.stdout
        assert "delivered" in r.stdout  # the last row of id 2 in the update file won
    root = tmp_path / "demo-bucket" / "destination=duckdb" / "database=demo" / "table_name=orders"
    assert sorted(p.name for p in (root / "failed").iterdir()) == ["2026-11-02-orders-bad.csv",
                                                                    "2026-11-02-orders-bad.csv.error.json"]
    assert len(list((root / "succeeded").iterdir())) == 4
    import duckdb

    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    assert con.execute("SELECT count(*) FROM demo.orders").fetchone() == (6,)
    # The example table whose create spec sets input_options (latin-1, ';', NA for NULL).
    assert con.execute("SELECT name, city, rating FROM demo.suppliers ORDER BY id").fetchall() == [
        ("Fromagerie Müller; Söhne", "Zürich", 5), ("Café Noël", "Besançon", None)]
    # ... and max_bad_rows 2: the row rated "cinq" is set aside, with its line and reason.
    sup = tmp_path / "demo-bucket" / "destination=duckdb" / "database=demo" / "table_name=suppliers"
    rejects = (sup / "failed" / "2026-11-01-suppliers.csv.rejects.csv").read_text().splitlines()
    assert rejects[1].startswith("4,,rating,not a whole number") and "picerie Dubois" in rejects[1]


def test_destinations_from_shipyard_toml(tmp_path, pg_admin_url, pg_database):
    # A destination named freely, its type given, configured in shipyard.toml (no env).
    (tmp_path / "shipyard.toml").write_text(
        f'[destinations.analytics]\ntype = "postgres"\nurl = "{pg_admin_url}"\n\n'
        '[destinations.duckdb]\nurl = "data/wh.duckdb"\n\n[propagator]\nchannel = "loads"\n')
    store = open_store(str(tmp_path / "b"))
    pk = f"destination=analytics/database={pg_database}/table_name=t/"
    store.put(pk + "schema/create/t.json", b'{"column_specification": {"id": "INTEGER"}}')
    store.put(pk + "input/load/a.csv", b"id\n1\n")
    store.put(D + "schema/create/t.json", b'{"column_specification": {"id": "INTEGER"}}')
    r = _shipyard("propagator", "process", "--bucket", str(tmp_path / "b"), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    import psycopg
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(make_conninfo(pg_admin_url, dbname=pg_database)) as c:
        assert c.execute("SELECT id FROM t").fetchall() == [(1,)]
    assert (tmp_path / "data" / "wh.duckdb").exists()  # relative to shipyard.toml
    notices = read_outbox(tmp_path / "outbox.jsonl")
    assert {n["channel"] for n in notices} == {"loads"}


def test_process_on_an_s3_bucket(tmp_path, s3_bucket):
    # The real entry point with --bucket s3://...: AWS_ENDPOINT_URL points at moto's server.
    store = open_store(s3_bucket + "/landing")
    store.put(D + "schema/create/t.json", b'{"column_specification": {"id": "INTEGER"}}')
    store.put(D + "input/load/a.csv.gz", __import__("gzip").compress(b"id\n1\n2\n"))
    r = _shipyard("propagator", "process", "--bucket", s3_bucket + "/landing", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [json.loads(x)["rows"] for x in r.stdout.splitlines() if x.startswith("{")] == [0, 2]
    assert store.exists(D + "succeeded/a.csv.gz") and not store.exists(D + "input/load/a.csv.gz")
    store.put(D + "input/load/u.csv", b"id\n3\n")
    r = _shipyard("propagator", "plan", "--bucket", s3_bucket + "/landing", D + "input/load/u.csv", cwd=tmp_path)
    # DuckDB would read a temp copy of the object; the plan names the object itself
    assert r.returncode == 0 and f"read_csv('{s3_bucket}/landing/{D}input/load/u.csv'" in r.stdout, r.stdout + r.stderr
    assert store.exists(D + "input/load/u.csv")


def test_a_bucket_that_does_not_exist_is_an_error_not_nothing_pending(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "typo-bucket"
    for cmd in (["process"], ["plan", "destination=duckdb/database=d/table_name=t/input/load/x.csv"]):
        r = subprocess.run([sys.executable, "-m", "shipyard.cli", "propagator", *cmd, "--bucket", str(missing)],
                           capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert "does not exist" in r.stderr and "Traceback" not in r.stderr
    assert not missing.exists()
