"""`shipyard propagator demo`: the examples, end to end, on the embedded default.

Lays examples/propagator/ (a create spec, an add-columns spec, a load CSV, an update CSV and
a bad CSV) into a local bucket folder, processes them into a DuckDB file and prints each
file's outcome, the failed file's report and the resulting table. Re-running starts over:
the demo's own folder in the bucket and its `demo` schema in the warehouse are reset.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import duckdb

from shipyard.console import console, print_table
from shipyard.errors import NotFoundError
from shipyard.notify import MemoryNotifier, Notice, Notifier, OutboxNotifier, get_notifier
from shipyard.propagator.display import print_outcomes
from shipyard.propagator.runner import Propagator
from shipyard.settings import Settings, get_settings

DEMO_PREFIX = "destination=duckdb/database=demo/"


def examples_dir() -> Path:
    here = Path(__file__).resolve()
    for cand in (here.parents[3] / "examples" / "propagator", Path.cwd() / "examples" / "propagator"):
        if cand.is_dir():
            return cand
    raise NotFoundError("examples/propagator/ not found",
                        hint="run the demo from a clone of the repository (make demo)")


def run_demo(bucket: Path, warehouse: Path) -> int:
    src = examples_dir()
    bucket = bucket.resolve()
    # Start over: only the demo's own folder and schema are touched.
    shutil.rmtree(bucket / "destination=duckdb" / "database=demo", ignore_errors=True)
    for f in sorted(src.rglob("*")):
        if f.is_file():
            dst = bucket / f.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst)
    con = duckdb.connect(str(warehouse))
    con.execute("DROP SCHEMA IF EXISTS demo CASCADE")
    con.close()

    base = get_settings()
    settings = Settings(**{**base.model_dump(exclude={"destinations"}),
                           "destinations": {**base.destinations,
                                            "duckdb": {"url": str(warehouse.resolve()), "type": "duckdb"}}})
    notes = MemoryNotifier()
    # The tables below say what happened; per-file log lines would repeat it.
    logging.getLogger("shipyard.propagator").setLevel(logging.ERROR)
    console.print(f"[bold]bucket[/] {bucket}   [bold]warehouse[/] {warehouse.resolve()}")
    with Propagator.from_settings(str(bucket), settings, notifier=_Tee(notes, settings)) as p:
        outcomes = p.process_pending()
        print_outcomes(outcomes, title="propagator demo: file outcomes")
        for o in outcomes:
            if o.status == "failed" and o.error:
                console.print(f"[red]{o.moved_to}.error.json[/]")
                console.print_json(json.dumps(o.error, default=str))
    # The propagator is closed: read the table as any DuckDB client would.
    con = duckdb.connect(str(warehouse))
    try:
        rel = con.execute("SELECT * FROM demo.orders ORDER BY id")
        print_table("demo.orders", [c[0] for c in rel.description], rel.fetchall())
    finally:
        con.close()
    console.print(f"notices: {len(notes.notices)} (also in {settings.outbox}); "
                  f"files now under {bucket / DEMO_PREFIX}")
    expected_failed = sum(1 for o in outcomes if o.status == "failed")
    # The demo ships exactly one bad file on purpose; anything else is a real problem.
    return 0 if expected_failed == 1 and all(o.status in ("succeeded", "failed") for o in outcomes) else 1


class _Tee:
    """Keeps the notices for the summary and sends them as configured (the outbox, without
    echoing each one: the demo prints its own table)."""

    def __init__(self, memory: MemoryNotifier, settings: Settings) -> None:
        self.memory = memory
        self.inner: Notifier = (OutboxNotifier(settings.outbox, echo=False) if not settings.slack_bot_token
                                else get_notifier(settings))

    def send(self, notice: Notice) -> None:
        self.memory.send(notice)
        self.inner.send(notice)
