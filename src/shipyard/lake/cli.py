"""`shipyard lake ...`: a thin client of shipyard.lake's library API.

The library (duckdb, pyarrow) is imported inside each command, to keep `shipyard --help` and
the other tools' start-up fast: each such import is marked "deferred: start-up cost".
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer

from shipyard.console import console, err_console, print_table
from shipyard.errors import InputError
from shipyard.settings import get_settings

app = typer.Typer(
    help="lake: raw JSON events -> deduplicated, partitioned Parquet; SQL over it (docs/lake.md).",
    no_args_is_help=True,
)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _progress(msg: str) -> None:
    err_console.print(f"[dim]{msg}[/]", highlight=False)


class _Spinner:
    """A spinner on a terminal while long work runs; each progress message is also printed."""

    def __init__(self, what: str) -> None:
        self.status = err_console.status(what) if err_console.is_terminal else None

    def __enter__(self) -> "_Spinner":
        if self.status:
            self.status.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.status:
            self.status.__exit__(*exc)

    def __call__(self, msg: str) -> None:
        _progress(msg)
        if self.status:
            self.status.update(msg.strip())


@app.command("list")
def list_() -> None:
    """List the datasets declared in shipyard.toml."""
    from shipyard.lake.config import load_datasets  # deferred: start-up cost

    rows = [(d.name, d.raw_url, d.lake_url, ", ".join(d.config.id), d.config.time,
             ", ".join(d.config.partition_by)) for d in load_datasets().values()]
    print_table("lake datasets", ["name", "raw", "lake", "id", "time", "partition_by"], rows)


@app.command()
def ingest(
    name: str = typer.Argument(..., help="Dataset name ([lake.datasets.NAME] in shipyard.toml)."),
    engine: str = typer.Option("duckdb", "--engine", help="duckdb (one machine) or spark (pyspark)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the files, partitions and rows; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the result (with a phase breakdown) as JSON."),
    notify_success: bool = typer.Option(False, "--notify", help="Send a notice on success too (failures always)."),
) -> None:
    """Ingest raw files not ingested yet: typed, deduplicated, partitioned, atomic."""
    from shipyard.lake.ingest import dry_run as preview  # deferred: start-up cost
    from shipyard.lake.ingest import ingest as run  # deferred: start-up cost

    if dry_run:
        d = preview(name)
        if as_json:
            typer.echo(json.dumps({
                "batches": [[i.key for i in b] for b in d.plan.batches], "raw_bytes": d.plan.raw_bytes,
                "already_done": d.plan.already_done, "not_raw": d.plan.not_raw, "rows": d.rows,
                "partitions": d.partitions, "new_columns": d.new_columns, "rejected": d.rejected}))
            return
        print_table(f"ingest {name} --dry-run: raw files", ["batch", "raw file", "bytes"],
                    [(n, i.key, _human(i.size)) for n, b in enumerate(d.plan.batches, 1) for i in b])
        print_table("partitions (rows before dedupe)", ["partition", "rows"], sorted(d.partitions.items()))
        err_console.print(f"{len(d.plan.files)} new raw file(s), {d.rows} rows, "
                          f"{len(d.partitions)} partition(s); {d.plan.already_done} already ingested; "
                          "nothing was written", highlight=False)
        for key, why in d.rejected.items():
            err_console.print(f"[yellow]would skip[/] {why}", highlight=False)
        return
    with _Spinner(f"ingesting {name}") as progress:
        r = run(name, engine=engine, progress=progress, notify_success=notify_success)
    if as_json:
        typer.echo(json.dumps({k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(r).items()}))
        return
    print_table(f"ingest {name} ({engine})", ["", "value"], [
        ("raw files", r.raw_files), ("raw bytes", _human(r.raw_bytes)),
        ("rows read", r.rows_read), ("duplicates dropped", r.duplicates),
        ("rows written", r.rows_written), ("parquet files", r.files_written),
        ("parquet bytes", _human(r.bytes_written)), ("partitions touched", len(r.partitions)),
        ("new columns", ", ".join(r.new_columns) or "-"), ("lake version", r.version),
        ("typing", f"over every row ({'; '.join(r.full_detection)})" if r.full_detection else
         "sampled, proved by one strict read" if r.one_pass else "over every row"),
        ("seconds", f"{r.seconds:.2f}"),
    ])
    for key, why in r.rejected.items():
        err_console.print(f"[yellow]skipped[/] {why}", highlight=False)


@app.command()
def query(
    sql: str = typer.Argument(..., help="SQL; each dataset is a view named after it."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the result to this file."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or parquet."),
    limit: int = typer.Option(1000, "--limit", help="Rows to print as a table (0: all)."),
    no_files: bool = typer.Option(False, "--no-files", help="Forbid the SQL any file or URL but the lakes'."),
) -> None:
    """Run DuckDB SQL over the lake (partition columns prune files).

    Like DuckDB itself, the SQL can read and write local files (read_csv('...'), COPY ... TO)
    with your rights; --no-files switches that off."""
    from shipyard.lake.ops import query as run  # deferred: start-up cost

    if fmt not in ("table", "csv", "parquet"):
        raise InputError(f"unknown format {fmt!r}", hint="use table, csv or parquet")
    if fmt == "parquet" and not output:
        raise InputError("--format parquet needs --output FILE")
    if output:
        r = run(sql, output=output, fmt=None if fmt == "table" else fmt, files=not no_files)
        err_console.print(f"wrote {r.row_count} rows to {r.output}")
        return
    if fmt == "csv" and no_files:  # DuckDB may not write even a temp file: Python's writer
        r = run(sql, files=False)
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(r.columns)
        w.writerows(r.rows)
        return
    if fmt == "csv":
        # DuckDB's CSV writer (its spelling of values), through a temp file: opening
        # /dev/stdout would truncate a redirected file (`>>`).
        with tempfile.TemporaryDirectory(prefix="shipyard-q-") as tmp:
            out = f"{tmp}/result.csv"
            run(sql, output=out, fmt="csv")
            with open(out, "rb") as f:
                sys.stdout.flush()
                shutil.copyfileobj(f, sys.stdout.buffer)
        return
    r = run(sql, limit=limit or None, files=not no_files)
    print_table(None, r.columns, r.rows)
    if limit and r.row_count >= limit:
        err_console.print(f"[dim]first {limit} rows; --limit 0 for all, or --output FILE[/]")


@app.command()
def stats(name: str = typer.Argument(..., help="Dataset name.")) -> None:
    """Files, rows and bytes per partition, and the compression ratio against raw."""
    from shipyard.lake.ops import stats as run  # deferred: start-up cost

    s = run(name)
    print_table(f"{name}: partitions (lake version {s.version})", ["partition", "files", "rows", "bytes"],
                [(p.partition, p.files, p.rows, _human(p.bytes)) for p in s.partitions])
    ratio = f"{s.compression:.1f}x" if s.compression else "-"
    print_table(f"{name}: totals", ["", "value"], [
        ("partitions", len(s.partitions)), ("parquet files", s.files), ("rows", s.rows),
        ("lake bytes", _human(s.lake_bytes)), ("raw files ingested", s.raw_files),
        ("raw bytes ingested", _human(s.raw_bytes)), ("compression (raw / lake)", ratio),
        ("raw files rejected", len(s.rejected)),
    ])
    for key, why in s.rejected.items():
        console.print(f"[yellow]rejected[/] {why}", highlight=False)


@app.command()
def compact(
    name: str = typer.Argument(..., help="Dataset name."),
    min_files: int = typer.Option(2, "--min-files", help="Compact a partition with at least this many small files."),
) -> None:
    """Merge small files per partition (atomically, like ingest)."""
    from shipyard.lake.ops import compact as run  # deferred: start-up cost

    with _Spinner(f"compacting {name}") as progress:
        r = run(name, min_files=min_files, progress=progress)
    print_table(f"compact {name}", ["", "value"], [
        ("partitions compacted", r.partitions), ("files before", r.files_before),
        ("files after", r.files_after), ("rows", r.rows),
    ])


@app.command()
def forget(
    name: str = typer.Argument(..., help="Dataset name."),
    where: Optional[str] = typer.Option(None, "--where", help="DuckDB condition: the rows to erase."),
    ids_file: Optional[str] = typer.Option(None, "--ids-file", help="A file of ids to erase, one per line."),
) -> None:
    """Erase events (a deletion request): rewrites only the affected files, atomically, and proves it."""
    from shipyard.lake.forget import forget as run  # deferred: start-up cost

    with _Spinner(f"erasing from {name}") as progress:
        r = run(name, where=where, ids_file=ids_file, progress=progress)
    print_table(f"forget {name}", ["", "value"], [
        ("rows erased", r.rows_erased), ("partitions", ", ".join(r.partitions) or "-"),
        ("files rewritten", r.files_rewritten), ("files dropped", r.files_dropped),
        ("matching rows left (proof)", r.remaining), ("erasure log", r.log_key or "-"),
    ])


@app.command()
def register(
    name: str = typer.Argument(..., help="Dataset name."),
    glue_database: str = typer.Option(..., "--glue-database", help="Glue database (created if missing)."),
    table: Optional[str] = typer.Option(None, "--table", help="Glue table name (default: the dataset's)."),
) -> None:
    """Create or update the dataset's Glue table and partitions, for Athena (committed files only)."""
    from shipyard.lake.glue import register as run  # deferred: start-up cost

    r = run(name, glue_database=glue_database, table=table)
    if r["table"] is None:
        raise InputError(f"lake {name!r} has no schema yet", hint=f"run `shipyard lake ingest {name}` first")
    print_table(f"register {name}", ["", "value"], [
        ("Glue table", r["table"]), ("created", "yes" if r["created"] else "no (updated)"),
        ("columns", r["columns"]), ("partitions added", r["partitions_added"]), ("lake version", r["version"]),
    ])


@app.command()
def demo(
    folder: str = typer.Option("lake-demo", "--dir", help="Where to lay out the raw zone and the lake."),
) -> None:
    """Firehose-shaped raw events -> lake -> SQL -> erasure, in a local folder (no cloud account)."""
    from shipyard.lake.demo import USERS, lay_out  # deferred: start-up cost

    root = Path(folder).resolve()
    if (root / "lake").exists():
        raise InputError(f"{root} already holds a demo lake", hint="remove it or pass --dir NEW_FOLDER")
    lay_out(root)
    os.environ["SHIPYARD_CONFIG"] = str(root / "shipyard.toml")
    get_settings(fresh=True)
    err_console.print(f"[bold]raw zone[/] {root / 'raw/events'} (Firehose-shaped: no extension, .gz, "
                      "concatenated records, 5 re-sent)", highlight=False)
    ingest(name="events", engine="duckdb", dry_run=True, as_json=False, notify_success=False)
    ingest(name="events", engine="duckdb", dry_run=False, as_json=False, notify_success=False)
    query(sql="SELECT dt, event, count(*) AS n, round(sum(amount), 2) AS amount FROM events "
          "GROUP BY ALL ORDER BY ALL", output=None, fmt="table", limit=1000, no_files=True)
    forget(name="events", where=f"user_id = '{USERS[0]}'", ids_file=None)
    query(sql="SELECT user_id, count(*) AS n FROM events GROUP BY ALL ORDER BY ALL", output=None,
          fmt="table", limit=1000, no_files=True)
    err_console.print(f"try: SHIPYARD_CONFIG={root / 'shipyard.toml'} shipyard lake stats events", highlight=False)


@app.command()
def ddl(
    name: str = typer.Argument(..., help="Dataset name."),
    dialect: str = typer.Option("athena", "--dialect", help="athena (Hive DDL) or trino (Hive connector)."),
    table: Optional[str] = typer.Option(None, "--table", help="Table name (default: the dataset's)."),
    database: Optional[str] = typer.Option(None, "--database", help="Athena database / Trino schema."),
    catalog: str = typer.Option("hive", "--catalog", help="Trino catalog of the Hive connector."),
) -> None:
    """Print Athena/Trino external-table DDL for the lake (partitioned, Parquet, its location)."""
    from shipyard.lake.ops import ddl as run  # deferred: start-up cost

    typer.echo(run(name, dialect=dialect, table=table, database=database, catalog=catalog), nl=False)
