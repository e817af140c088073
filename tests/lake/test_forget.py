"""Erasure (issue 19.3): only the affected files are rewritten, atomically; proven; logged."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.errors import InputError
from shipyard.lake.forget import forget
from shipyard.lake.ingest import ingest
from shipyard.lake.ops import query
from tests.helpers import read_outbox

from .conftest import make_events


def test_forget_a_user_rewrites_only_their_files_and_proves_it(lake_env):
    ev = make_events(150, days=3, users=5) + make_events(150, days=3, users=5, seed=2, prefix="f")
    lake_env.put("a.jsonl", ev[:150])
    ingest("events")
    lake_env.put("b.jsonl", ev[150:])  # other users: these files stay as they are
    ingest("events")
    user = ev[0]["user_id"]
    theirs = sorted(e["event_id"] for e in ev if e["user_id"] == user)
    before = set(lake_env.data_keys())
    r = forget("events", where=f"user_id = '{user}'")
    assert r.rows_erased == len(theirs) and r.remaining == 0
    assert sorted(r.ids) == theirs
    after = set(lake_env.data_keys())
    untouched = before & after
    assert len(before - after) == r.files_rewritten + r.files_dropped and untouched  # only those files
    assert query(f"SELECT count(*) FROM events WHERE user_id = '{user}'").rows == [(0,)]
    assert query("SELECT count(*) FROM events").rows == [(300 - len(theirs),)]
    with lake_env.lake.open(r.log_key) as f:
        log = json.loads(f.read())
    assert sorted(log["ids"]) == theirs and log["partitions"] == r.partitions and log["at"]
    assert user not in json.dumps(log)  # ids and partitions only, not the erased rows
    assert read_outbox()[-1]["title"].startswith("lake forget events")
    # nothing left to erase: nothing changes
    assert forget("events", where=f"user_id = '{user}'").rows_erased == 0


def test_forget_by_ids_file_and_bad_arguments(local_env, tmp_path):
    ev = make_events(40, days=1)
    local_env.put("a.jsonl", ev)
    ingest("events")
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(e["event_id"] for e in ev[:40]) + "\n")  # every row of the lake
    r = CliRunner().invoke(app, ["lake", "forget", "events", "--ids-file", str(ids)])
    assert r.exit_code == 0, r.output
    assert query("SELECT count(*) FROM events").rows == [(0,)]
    assert local_env.data_keys() == []
    with pytest.raises(InputError, match="exactly one"):
        forget("events")
    local_env.put("b.jsonl", make_events(5, prefix="n"))
    ingest("events")
    with pytest.raises(InputError, match="no_such_column"):
        forget("events", where="no_such_column = 1")
    with pytest.raises(InputError, match="not one condition"):
        forget("events", where=f"true); COPY (SELECT 1) TO '{tmp_path / 'x.csv'}'; SELECT (1")
    assert not (tmp_path / "x.csv").exists()
