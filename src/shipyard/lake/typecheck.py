"""Typing a batch: DuckDB detects types over every row, the kept schema is widened, and a file
that does not fit is named with its line (then fails the ingest or is skipped, per on_bad_file).
Runs before any engine, so the checks are the same whichever engine writes.

DuckDB's detection over every row (`sample_size=-1`) runs while a query is bound, on one
thread, so it is run per file (`detector`, on the staging workers: files are detected in
parallel, each as soon as it is staged) and the files' types are combined as DuckDB would have
combined them (schema.union). A file that does not fit is then known without detecting it again.
Why every row: DuckDB's reader, given a type (or one inferred from a sample), silently turns
2.5 into 2 and true into 1 in a BIGINT column and drops keys it did not see."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import duckdb

from shipyard.errors import ConfigError, InputError, ShipyardError
from shipyard.lake import schema as sch
from shipyard.lake.config import Dataset
from shipyard.lake.manifest import Manifest
from shipyard.lake.rawfiles import find_malformed, find_misfit, is_blank, open_raw, read_json_sql


class RawError(Exception):
    """DuckDB could not read a raw file (malformed JSON, not objects...)."""


@dataclass
class Typed:
    schema: dict[str, Any]                  # raw JSON key -> type, merged with the kept one
    paths: list[str]                        # staged files that join the lake
    blanks: list[str] = field(default_factory=list)   # no record at all: done, nothing to write
    rejected: dict[str, str] = field(default_factory=dict)  # path -> why (on_bad_file = "skip")
    new_columns: list[str] = field(default_factory=list)


def detect(con: Any, paths: list[str], sample: int | None = None) -> dict[str, Any]:
    try:
        rel = con.sql(f"SELECT * FROM {read_json_sql(paths, sample=sample)} LIMIT 0")
    except duckdb.Error as exc:
        raise RawError(str(exc).splitlines()[0]) from None
    return {n: sch.from_duckdb(t) for n, t in zip(rel.columns, rel.types)}


def detector(con: Any, sample: int | None = None) -> Callable[[str], dict[str, Any] | RawError | None]:
    """Detect one staged file's types (over its first `sample` rows, or all) on a cursor of
    its own (safe from a worker thread; DuckDB releases the GIL); None for a blank file; a
    file DuckDB cannot read gives its RawError, explained later."""

    def run(path: str) -> dict[str, Any] | RawError | None:
        if is_blank(path):
            return None
        cur = con.cursor()
        try:
            return detect(cur, [path], sample)
        except RawError as exc:
            return exc
        finally:
            cur.close()

    return run


def _lines_in(path: str) -> int:
    n = 0
    with open_raw(path) as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
    return n


def explain_file(path: str, key: str, kept: dict[str, Any], declared: dict[str, Any],
                 found: dict[str, Any] | RawError, lines_before: Callable[[], int] = lambda: 0) -> str | None:
    """Why one raw file (or part of one: `lines_before` counts the lines of the parts before
    it) cannot join the lake, with its line; None when it can."""
    if isinstance(found, RawError):
        with open_raw(path) as f:
            hit = find_malformed(f)
        if hit is None:  # nothing wrong in the file: DuckDB failed (out of memory...)
            raise ShipyardError(
                f"DuckDB could not read {key}: {found}; nothing was written",
                hint="if it ran out of memory, raise [lake] memory_limit or lower the dataset's batch_mb")
        return f"{key}, line {hit[0] + lines_before()}: {hit[1]}"
    _, conflicts = sch.merge_schema(kept, found, declared)
    if not conflicts:
        return None
    path_, want, got = conflicts[0]
    with open_raw(path) as f:
        hit = find_misfit(f, path_, want)
    where = f"{key}, line {hit[0] + lines_before()}" if hit else key
    value = f" (value {hit[1]})" if hit else ""
    return f"{where}: field {path_!r} is {sch.show(want)} in the lake but {sch.show(got)} here{value}"


def explain_batch(paths: list[str], staged: dict[str, str], kept: dict[str, Any],
                  declared: dict[str, Any], found: dict[str, Any]) -> dict[str, str]:
    """path -> why, for every part of each raw object that does not fit (the first misfit)."""
    why: dict[str, str] = {}
    parts: dict[str, list[str]] = {}
    for p in paths:
        parts.setdefault(staged[p], []).append(p)
    for key, ps in parts.items():
        for i, p in enumerate(ps):
            reason = explain_file(p, key, kept, declared, found[p],
                                  lambda i=i, ps=ps: sum(_lines_in(x) for x in ps[:i]))
            if reason:
                why.update({x: reason for x in ps})
                break
    return why


def type_batch(con: Any, ds: Dataset, m: Manifest, staged: dict[str, str],
               found: dict[str, Any] | None = None, explain: bool = True) -> Typed:
    """The merged raw schema and the files that can be ingested; conflicts fail or are skipped.
    `staged` maps local path -> raw key (for messages); `found` holds each file's detected types
    when the staging workers ran `detector` (else files are detected here); explain=False: a
    conflict raises InputError without naming the file (its parts are no longer on disk)."""
    declared = {k: sch.from_sql(v) for k, v in ds.config.columns.items()}
    kept = {n: declared.get(n, t) for n, t in m.schema.items()}
    if found is None:
        run = detector(con)
        found = {p: run(p) for p in staged}
    paths = [p for p in staged if found[p] is not None]
    out = Typed(kept, paths, blanks=[p for p in staged if p not in paths])
    if not paths:
        return out
    if not all(isinstance(found[p], dict) for p in paths):
        merged, conflicts = kept, [("", None, None)]
    else:
        merged, conflicts = sch.merge_schema(kept, sch.union_schema([found[p] for p in paths]), declared)
    if conflicts and not explain:  # the files are gone (joined): the caller types it again
        raise InputError(f"dataset {ds.name!r}: the batch does not fit the lake's schema")
    if conflicts:
        bad = explain_batch(paths, staged, kept, declared, found)
        if not bad:  # every file alone fits: only their union does not
            path_, want, got = conflicts[0]
            raise InputError(
                f"dataset {ds.name!r}: field {path_!r} is {sch.show(want)} in the lake but "
                f"{sch.show(got)} across this batch's files",
                hint=f"declare its type in [lake.datasets.{ds.name}.columns]",
            )
        if ds.config.on_bad_file == "fail":
            lines = list(bad.values())
            more = f" (and {len(lines) - 5} more files)" if len(lines) > 5 else ""
            raise InputError(
                f"dataset {ds.name!r}: {len(lines)} raw file(s) do not fit the lake's schema: "
                + "; ".join(lines[:5]) + more + "; nothing was written",
                hint="fix or move the file(s) aside, declare the column's type in "
                f"[lake.datasets.{ds.name}.columns] (e.g. VARCHAR), or set on_bad_file = \"skip\"",
            )
        out.paths = [p for p in paths if p not in bad]
        out.rejected = bad
        gone = {staged[p] for p in bad}
        out.blanks = [p for p in out.blanks if staged[p] not in gone]
        merged = kept
        if out.paths:
            merged, conflicts = sch.merge_schema(kept, sch.union_schema([found[p] for p in out.paths]),
                                                 declared)
            if conflicts:
                raise InputError(f"dataset {ds.name!r}: cannot type the raw batch: {conflicts[0]}")
    out.schema = {k: v for k, v in merged.items() if v != sch.NULL}
    if m.version > 0:
        old = set(sch.field_paths(m.schema))
        out.new_columns = [p for p in sch.field_paths(out.schema) if p not in old]
    return out


def check_columns(ds: Dataset, raw_schema: dict[str, Any]) -> None:
    """The dataset's id, time, partition and sort columns exist with usable types."""
    c = ds.config
    lake_names = {c.rename.get(r, r): t for r, t in raw_schema.items()}
    known = ", ".join(sorted(lake_names)) or "none"
    for col in c.id:
        if col not in lake_names:
            raise ConfigError(f"dataset {ds.name!r}: id column {col!r} is not in the raw records (fields: {known})",
                              hint=f"fix lake.datasets.{ds.name}.id")
    if c.time not in lake_names:
        raise ConfigError(f"dataset {ds.name!r}: time column {c.time!r} is not in the raw records (fields: {known})",
                          hint=f"fix lake.datasets.{ds.name}.time")
    tt = lake_names[c.time]
    if tt not in sch.TIMES and not (tt in ("BIGINT", "DOUBLE") and c.time_unit):
        raise ConfigError(
            f"dataset {ds.name!r}: time column {c.time!r} is {sch.show(tt)}, not a date or timestamp",
            hint=f"use ISO 8601 times, declare lake.datasets.{ds.name}.columns.{c.time} = \"TIMESTAMP\", "
            "or time_unit = \"s\"/\"ms\" for epoch numbers",
        )
    derived = {p.name for p in ds.partitions if p.kind != "field"}
    for p in ds.partitions:
        if p.kind in ("field", "bucket") and p.field not in lake_names:
            raise ConfigError(f"dataset {ds.name!r}: partition field {p.field!r} is not in the raw records "
                              f"(fields: {known})", hint=f"fix lake.datasets.{ds.name}.partition_by")
    clash = derived & set(lake_names)
    if clash:
        raise ConfigError(f"dataset {ds.name!r}: raw field(s) {sorted(clash)} collide with partition columns",
                          hint=f"rename them: [lake.datasets.{ds.name}.rename]")
    for col in c.sort_by:
        if col not in lake_names:
            raise ConfigError(f"dataset {ds.name!r}: sort_by column {col!r} is not in the raw records",
                              hint=f"fix lake.datasets.{ds.name}.sort_by")
