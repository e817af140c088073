"""Secrets never reach logs, error reports, notifications or CLI output, whatever fails.

Each scenario points a destination at something that fails with the password in its URL (a
closed port, a role the real PostgreSQL does not know, a malformed URL, the real MariaDB with
a wrong password), then runs the real CLI (`shipyard propagator process`) and an in-process
`watch` pass, and searches every place text goes: stdout/stderr of the CLI, the captured log,
the outbox (notifications), and every object in the bucket (error reports).
PostgreSQL here trusts loopback connections (pg_hba `trust`), so a wrong password cannot be
refused by it; an unknown role is its real authentication-stage error instead.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pymysql
import pytest

from shipyard.propagator import Propagator
from shipyard.settings import get_settings
from shipyard.store import open_store
from tests.helpers import free_port

SECRET = "S3cr3t-" + uuid.uuid4().hex[:12]
# A password as people really write them: a raw '@', spaces, '%', quotes, non-ASCII. No piece of
# it may show, whichever way a driver cuts the URL.
TAIL = "T4il" + uuid.uuid4().hex[:8]
AWKWARD = f"{SECRET}@ {TAIL} %'\"é{SECRET[::-1]}"
PIECES = [SECRET, TAIL, SECRET[::-1]]

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def mysql_user(mysql_url):
    """A real MariaDB account with a password (the test connects with a wrong one)."""
    name = f"shipyard_s_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        conn.cursor().execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'right-{SECRET}'")
        yield name
        conn.cursor().execute(f"DROP USER IF EXISTS '{name}'@'%'")
    finally:
        conn.close()


def _scenarios(request) -> dict[str, tuple[str, str]]:
    return {
        "pg-closed-port": ("postgres", f"postgresql://loader:{SECRET}@127.0.0.1:{free_port()}/postgres"),
        "pg-unknown-role": ("postgres", f"postgresql://nobody_{uuid.uuid4().hex[:6]}:{SECRET}@127.0.0.1:5432/postgres"),
        "pg-bad-percent-encoding": ("postgres", f"postgresql://loader:pa%ZZ{SECRET}@127.0.0.1:5432/postgres"),
        "pg-password-in-query": ("postgres", f"postgresql://loader@127.0.0.1:{free_port()}/postgres?password={SECRET}"),
        "pg-bad-option": ("postgres", f"postgresql://loader:{SECRET}@127.0.0.1:5432/postgres?sslmode=bogus"),
        "mysql-closed-port": ("mysql", f"mysql://loader:{SECRET}@127.0.0.1:{free_port()}/test"),
        "mysql-wrong-password": ("mysql", "mysql://{user}:wrong-" + SECRET + "@127.0.0.1:3306/test"),
        "pg-awkward-password": ("postgres", f"postgresql://loader:{AWKWARD}@127.0.0.1:{free_port()}/postgres"),
        "pg-awkward-password-live": ("postgres", f"postgresql://nobody_x:{AWKWARD}@127.0.0.1:5432/postgres"),
        "mysql-awkward-password": ("mysql", f"mysql://loader:{AWKWARD}@127.0.0.1:{free_port()}/test"),
    }


SCENARIOS = ["pg-closed-port", "pg-unknown-role", "pg-bad-percent-encoding", "pg-password-in-query", "pg-bad-option",
             "mysql-closed-port", "mysql-wrong-password", "pg-awkward-password", "pg-awkward-password-live",
             "mysql-awkward-password"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_secret_in_any_output(scenario, request, tmp_path, monkeypatch, caplog):
    kind, url = _scenarios(request)[scenario]
    if "{user}" in url:
        url = url.format(user=request.getfixturevalue("mysql_user"))
    monkeypatch.setenv(f"SHIPYARD_DESTINATIONS__{kind.upper()}__URL", url)
    bucket = tmp_path / "bucket"
    store = open_store(str(bucket))
    keys = [f"destination={kind}/database=sales/table_name=t/input/load/a.csv",
            f"destination={kind}/database=sales/table_name=u/schema/create/c.json"]

    def lay() -> None:
        store.put(keys[0], b"id\n1\n")
        store.put(keys[1], b'{"column_specification": {"id": "INTEGER"}}')

    # 1. the real CLI, as an operator runs it
    lay()
    env = {**os.environ, "COLUMNS": "300"}
    r = subprocess.run([sys.executable, "-m", "shipyard.cli", "propagator", "process", "--bucket", str(bucket)],
                       env=env, capture_output=True, text=True, timeout=60)
    cli_text = r.stdout + r.stderr
    assert r.returncode in (0, 1, 2, 3), cli_text
    assert "Traceback" not in cli_text

    # 2. an in-process watch pass (the long-running worker), its log captured
    lay()
    caplog.set_level(logging.DEBUG)
    # and the tool's own logger: another test (the Lambda handler's setup) may have left it at INFO,
    # which would hide the debug lines from this check
    caplog.set_level(logging.DEBUG, logger="shipyard")
    p = Propagator.from_settings(str(bucket), get_settings(fresh=True))
    stop = threading.Event()
    passes: list = []
    t = threading.Thread(target=p.watch, kwargs={"interval": 0.05, "stop": stop, "on_outcome": passes.append})
    t.start()
    t.join(1.0)  # the first pass runs at once; later ones back off
    stop.set()
    t.join(30)
    p.close()
    log_text = "\n".join(rec.getMessage() + " " + str(rec.exc_text or "") for rec in caplog.records)
    outbox = Path(os.environ["SHIPYARD_OUTBOX"])
    sinks = {
        "CLI output": cli_text,
        "log": log_text,
        "outbox (notifications)": outbox.read_text() if outbox.exists() else "",
        "outcomes": repr([o.to_dict() for o in passes]),
    }
    for obj in store.list(""):
        with store.open(obj.key) as f:
            sinks[f"bucket object {obj.key}"] = f.read().decode("utf-8", "replace")
    leaks = [f"{where} ({piece[:4]}...)" for where, text in sinks.items() for piece in PIECES
             if piece in text]
    assert not leaks, f"{scenario}: the secret appears in {leaks}"
    # Something was said about the failure (not silence): the CLI named the destination problem.
    assert passes and ("destination" in cli_text or "retry" in cli_text or "failed" in cli_text), cli_text
