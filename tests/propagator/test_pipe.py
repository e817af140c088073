"""MariaDB's load reads DuckDB's strict rewrite of the file through a named pipe while DuckDB
writes it (sources.plain_csv_pipe): the two overlap. These are the pipe's own edges; the loads
themselves are covered on MariaDB by every test_*.py that runs the `mysql` destination."""

from __future__ import annotations

import os
import threading
import time

import pytest

from shipyard.errors import InputError
from shipyard.propagator.sources import open_source
from shipyard.store import open_store, spool_dir

ROWS = 200_000  # several MiB: more than the pipe holds, so the writer blocks until it is read


def _source(tmp_path, body: str):
    store = open_store(str(tmp_path / "b"))
    key = "destination=mysql/database=d/table_name=t/input/load/a.csv"
    store.put(key, body.encode())
    return open_source(store, key, "a.csv")


def _big(bad_at: int | None = None) -> str:
    rows = [f"{i},name{i}" for i in range(ROWS)]
    if bad_at is not None:
        rows[bad_at] = f"{bad_at}"  # a short row
    return "id,name\n" + "\n".join(rows) + "\n"


def _fifos() -> list[str]:
    return [p.name for p in spool_dir().iterdir() if p.is_fifo()]


def test_the_reader_gets_every_row_and_the_pipe_is_gone_after(tmp_path):
    src = _source(tmp_path, _big())
    path = src.plain_csv_pipe({"id": "int(11)", "name": "varchar(20)"})
    with open(path, "rb") as f:  # what LOAD DATA LOCAL does with the name
        lines = f.read().decode().splitlines()
    src.end_pipe()
    src.close()
    assert lines[0] == "id,name" and len(lines) == ROWS + 1 and lines[-1] == f"{ROWS - 1},name{ROWS - 1}"
    assert os.path.basename(path) not in _fifos()


def test_a_pipe_nobody_reads_does_not_hang_the_close(tmp_path):
    """A plan that stops before its LOAD DATA (the file already in the ledger, a lock not got):
    the writer is blocked opening the pipe, or on a full pipe; close() drains it."""
    src = _source(tmp_path, _big())
    src.plain_csv_pipe({"id": "int(11)"})
    time.sleep(0.2)
    done = threading.Event()
    threading.Thread(target=lambda: (src.close(), done.set()), daemon=True).start()
    assert done.wait(30), "close() hung on the pipe"


def test_the_files_fault_is_reported_with_its_line_even_when_the_reader_stopped(tmp_path):
    src = _source(tmp_path, _big(bad_at=150_000))
    path = src.plain_csv_pipe({"id": "int(11)"})
    with open(path, "rb") as f:
        f.read()
    with pytest.raises(InputError) as exc:
        src.end_pipe(loader_failed=True)
    assert exc.value.details["where"]["line"] == 150_002
    src.close()


def test_a_loader_that_stops_early_keeps_its_own_error(tmp_path):
    """LOAD DATA failed (a value MySQL refuses, a cut connection) and closed its end: DuckDB then
    finds the pipe closed (EPIPE). That is not the file's fault; the loader's error stands."""
    for loader_failed in (True, False):
        src = _source(tmp_path / str(loader_failed), _big())
        path = src.plain_csv_pipe({"id": "int(11)"})
        with open(path, "rb") as f:
            f.read(4096)
        time.sleep(0.5)  # the writer meets the closed pipe before anyone opens it again
        if loader_failed:
            src.end_pipe(loader_failed=True)  # no error of its own: the loader's stands
        else:  # a loader that says it read everything, yet the pipe broke: that is reported
            with pytest.raises(InputError, match="Broken pipe"):
                src.end_pipe()
        src.close()


def test_a_whole_number_check_in_the_pipe_names_the_line(tmp_path):
    src = _source(tmp_path, "id,name\n1,a\n2.5,b\n")
    path = src.plain_csv_pipe({"id": "int(11)"})
    with open(path, "rb") as f:
        f.read()
    with pytest.raises(InputError) as exc:
        src.end_pipe()
    assert "'2.5'" in exc.value.message and exc.value.details["where"] == {"column_name": "id", "column": 1, "line": 3}
    src.close()
