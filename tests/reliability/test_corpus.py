"""The hostile corpus (tests/reliability/corpus/*.yaml), run through a live `watch` worker on
every engine that runs here.

A case file holds the files to drop and what must happen to each (see corpus/README.md):
`succeeded` (with N rows), `failed` (moved to failed/ with a report mentioning X), or
`skipped` (left where it is, or an event refused without touching anything). Every case's
files go into one bucket watched by one worker: the worker must process them all and never
die, whatever they contain; then each case is checked and every mismatch is listed.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import threading
import time
from pathlib import Path

import pytest
import yaml

from shipyard.propagator import Propagator
from shipyard.settings import get_settings
from shipyard.store import open_store
from tests.reliability.conftest import size

CORPUS = Path(__file__).parent / "corpus"
DEFAULT_CREATE = {"column_specification": {"id": "INTEGER", "name": "VARCHAR(100)"}, "primary_key": ["id"]}

pytestmark = pytest.mark.timeout(size(200, 600))


def load_cases() -> list[tuple[str, dict]]:
    return [(p.stem, yaml.safe_load(p.read_text(encoding="utf-8"))) for p in sorted(CORPUS.glob("*.yaml"))]


def _content(entry: dict) -> bytes:
    if "text" in entry:
        return entry["text"].encode("utf-8", "surrogatepass")
    if "b64" in entry:
        return base64.b64decode(entry["b64"])
    g = entry["gen"]
    kind = g["kind"]
    if kind == "huge_field":
        return b"id,name\n1," + b"x" * (g["mib"] << 20) + b"\n"
    if kind == "huge_header":
        return b"id" + b"x" * (g["mib"] << 20) + b"\n1\n"
    if kind == "wide_spec":
        return json.dumps({"column_specification": {f"c{i}": "INTEGER" for i in range(g["columns"])}}).encode()
    if kind == "deep_json":
        return b"[" * g["depth"] + b"]" * g["depth"]
    if kind == "nul_rows":  # a header, then MiBs of NUL bytes: DuckDB's reader returns no row
        return b"id,name\n" + b"\0" * (g["mib"] << 20)
    if kind == "gzip_bomb":  # a header and MiBs of zeros, gzip-compressed (~1000x)
        return gzip.compress(b"id,name\n" + b"\0" * (g["mib"] << 20), 1)
    if kind == "big_spec":
        return json.dumps({"column_specification": {"id": "INTEGER"}, "pad": "x" * (g["mib"] << 20)}).encode()
    raise AssertionError(f"unknown generator {kind!r}")


def _pick(value, engine: str):
    return value.get(engine, value.get("default")) if isinstance(value, dict) else value


class Laid:
    def __init__(self, case: str, entry: dict, key: str, table_prefix: str | None) -> None:
        self.case, self.entry, self.key, self.table_prefix = case, entry, key, table_prefix


def lay_out(store, cases, dest) -> tuple[list[Laid], list[Laid], dict[str, dict]]:
    """Drop every case's files; return (laid files, event-only keys, case -> its table info)."""
    laid, events, tables = [], [], {}
    for n, (name, case) in enumerate(cases, 1):
        table = case.get("table", f"c{n:03d}")
        db = case.get("database", dest.db)
        d = case.get("destination", dest.name)
        prefix = f"destination={d}/database={db}/table_name={table}/"
        tables[name] = {"table": table, "prefix": prefix, "case": case}
        create = case.get("create", DEFAULT_CREATE)
        if create is not None:
            store.put(prefix + "schema/create/000-create.json", json.dumps(create).encode())
            laid.append(Laid(name, {"path": "schema/create/000-create.json", "expect": "succeeded"},
                             prefix + "schema/create/000-create.json", prefix))
        for entry in case["files"]:
            if "key" in entry:
                key = entry["key"].format(dest=d, db=db, t=table)
                item = Laid(name, entry, key, None)
                if entry.get("deliver") == "event":
                    events.append(item)
                    continue
            else:
                key = prefix + entry["path"]
                item = Laid(name, entry, key, prefix)
            data = _content(entry)
            store.put(key, gzip.compress(data) if entry.get("gzip") else data)
            laid.append(item)
    return laid, events, tables


def _report(store, x: Laid) -> dict | None:
    """The error report of a failed file: `<name>.error.json`, or a shorter name when that one
    would not fit the filesystem (the report names its file inside)."""
    name = x.key.rsplit("/", 1)[1]
    key = x.table_prefix + "failed/" + name + ".error.json"
    try:
        direct = store.exists(key)
    except OSError:  # the name is longer than the filesystem allows
        direct = False
    candidates = [key] if direct else [
        o.key for o in store.list(x.table_prefix + "failed/") if o.key.endswith(".error.json")]
    for k in candidates:
        with store.open(k) as fh:
            report = json.loads(fh.read())
        if report.get("original_key") == x.key:
            return report
    return None


def test_corpus_has_enough_cases_of_each_kind():
    cases = load_cases()
    assert len(cases) >= 60
    kinds = {name.split("-", 2)[1] for name, _ in cases}
    assert {"sql", "csv", "enc", "spec", "key", "value", "data"} <= kinds
    for name, case in cases:
        assert case.get("description") and case.get("files"), name
        for e in case["files"]:
            assert {"expect"} <= set(e) and ("path" in e or "key" in e), (name, e)


def test_hostile_corpus_on_a_live_worker(rdest, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="shipyard")
    cases = load_cases()
    bucket = str(tmp_path / "bucket")
    store = open_store(bucket)
    laid, events, tables = lay_out(store, cases, rdest)
    outsider = tmp_path / "outside-the-bucket"
    outsider.mkdir()

    settings = get_settings(fresh=True)
    p = Propagator.from_settings(bucket, settings)
    outcomes: dict[str, object] = {}
    stop = threading.Event()
    passes = {"n": 0}

    def on_outcome(o):
        outcomes[o.key] = o  # a file left for a retry is reported again when it ends

    def done() -> set[str]:
        return {k for k, o in outcomes.items() if not (o.reason or "").startswith("retry later")}

    worker = threading.Thread(target=p.watch, kwargs={"interval": 0.05, "stop": stop, "on_outcome": on_outcome},
                              daemon=True)
    worker.start()
    expected_keys = {x.key for x in laid if _pick(x.entry["expect"], rdest.kind) != "skipped"}
    deadline = time.monotonic() + size(150, 500)
    try:
        while time.monotonic() < deadline and not expected_keys <= done():
            time.sleep(0.1)
        # The worker is still serving: a file dropped now is picked up like any other.
        prefix = tables[cases[-1][0]]["prefix"]
        probe = prefix[:prefix.index("table_name=")] + "table_name=corpus_probe/schema/create/p.json"
        store.put(probe, json.dumps(DEFAULT_CREATE).encode())
        while time.monotonic() < deadline and probe not in outcomes:
            time.sleep(0.05)
        assert worker.is_alive()
    finally:
        stop.set()
        worker.join(60)
    passes["n"] = sum(1 for r in caplog.records if r.getMessage().startswith("watching"))
    problems: list[str] = []
    # Nothing escaped a pass: an exception there would leave a poison file retried forever.
    for r in caplog.records:
        if r.levelno >= logging.ERROR or r.getMessage().startswith("watch:"):
            problems.append(f"the worker logged: {r.getMessage()[:300]}")
    if probe not in outcomes or outcomes[probe].status != "succeeded":
        problems.append(f"a file dropped after the corpus was not served: {outcomes.get(probe)}")

    # Events for keys the store must not take (traversal, NUL, absolute): refused, nothing touched.
    for x in events:
        try:
            o = p.process_key(x.key)
            status = o.status
        except Exception as exc:  # noqa: BLE001  (reported as a mismatch)
            status = f"raised {type(exc).__name__}: {exc}"
        want = _pick(x.entry["expect"], rdest.kind)
        if status != want:
            problems.append(f"{x.case}: event {x.key!r}: expected {want}, got {status}")
    if any(outsider.iterdir()) or (tmp_path / "etc").exists():
        problems.append("something was written outside the bucket")

    for x in laid:
        want = _pick(x.entry["expect"], rdest.kind)
        o = outcomes.get(x.key)
        name = x.key.rsplit("/", 1)[1]
        label = f"{x.case}: {x.key.split('/table_name=')[-1]!r}"
        if want == "skipped":
            if o is not None and o.status != "skipped":
                problems.append(f"{label}: expected skipped, got {o.status} ({o.reason})")
            elif not store.exists(x.key):
                problems.append(f"{label}: a skipped file was moved")
            continue
        if o is None:
            problems.append(f"{label}: never processed")
            continue
        if o.status != want:
            detail = (o.error or {}).get("what") if o.error else o.reason
            problems.append(f"{label}: expected {want}, got {o.status}: {detail}")
            continue
        if want == "succeeded":
            rows = _pick(x.entry.get("rows"), rdest.kind)
            if rows is not None and o.rows != rows:
                problems.append(f"{label}: expected {rows} rows, got {o.rows}")
            if not store.exists(x.table_prefix + "succeeded/" + name):
                problems.append(f"{label}: not under succeeded/")
        else:
            report = _report(store, x)
            if not store.exists(x.table_prefix + "failed/" + name) or report is None:
                problems.append(f"{label}: failed without the file and its report under failed/")
                continue
            if not report.get("what") or not report.get("how_to_fix"):
                problems.append(f"{label}: report lacks what / how_to_fix: {report}")
            text = (report["what"] + " " + report["how_to_fix"]).lower()
            needle = _pick(x.entry.get("error"), rdest.kind)
            if needle and needle.lower() not in text:
                problems.append(f"{label}: report does not mention {needle!r}: {report['what']}")
            line = x.entry.get("where_line")
            if line and (report.get("where") or {}).get("line") != line:
                problems.append(f"{label}: expected line {line}, report says {report.get('where')}")

    # Exact contents where the case states them (values compared as text; NULL as None).
    p.close()
    for name, info in tables.items():
        values = info["case"].get("values")
        if values is None:
            continue
        try:
            got = [[r[0], r[1]] for r in rdest.query(f"SELECT id, name FROM {info['table']} ORDER BY id")]
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{name}: cannot read the table: {exc}")
            continue
        if got != values:
            problems.append(f"{name}: table holds {got!r}, expected {values!r}")
    assert not problems, f"{len(problems)} mismatch(es) on {rdest.kind}:\n" + "\n".join(problems)
