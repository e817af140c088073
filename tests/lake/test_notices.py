"""The lake's notices (issue 19.4): failure with file and line, skipped files, success on
request, compaction; through shipyard.notify's outbox."""

from __future__ import annotations

import pytest

from shipyard.errors import InputError
from shipyard.lake.ingest import ingest
from shipyard.lake.ops import compact
from tests.helpers import read_outbox

from .conftest import dumps, make_events


def test_notices_for_failure_skip_success_and_compaction(local_env):
    ev = make_events(20)
    local_env.put("a.jsonl", ev[:10])
    ingest("events")
    assert read_outbox() == []  # success is quiet unless asked
    bad = dumps(ev[10:15]) + b'{"event_id": "z", "ts": "2021-03-01T00:00:00Z", "amount": 2.5}\n'
    local_env.put("b.jsonl", bad)
    with pytest.raises(InputError):
        ingest("events")
    (fail,) = read_outbox()
    assert (fail["tool"], fail["level"], fail["channel"]) == ("lake", "failure", "data-lake-notifications")
    assert "b.jsonl, line 6" in fail["message"] and "amount" in fail["message"]

    local_env.write_config(on_bad_file="skip")
    local_env.put("c.jsonl", ev[15:])
    r = ingest("events", notify_success=True)
    assert r.rows_written == 5
    skipped, ok = read_outbox()[1:]
    assert skipped["level"] == "warning" and skipped["fields"]["files"] == ["b.jsonl"]
    assert ok["level"] == "success" and ok["fields"]["rows_written"] == 5

    compact("events")
    done = read_outbox()[-1]
    assert done["level"] == "info" and "compact" in done["title"] and done["fields"]["files_after"] >= 1
