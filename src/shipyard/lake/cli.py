"""`shipyard lake ...`: a thin client of shipyard.lake's library API."""

from __future__ import annotations

from typing import Optional

import typer

from shipyard.console import console, err_console, print_table

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
    from shipyard.lake.config import load_datasets

    rows = [(d.name, d.raw_url, d.lake_url, ", ".join(d.config.id), d.config.time,
             ", ".join(d.config.partition_by)) for d in load_datasets().values()]
    print_table("lake datasets", ["name", "raw", "lake", "id", "time", "partition_by"], rows)


@app.command()
def ingest(
    name: str = typer.Argument(..., help="Dataset name ([lake.datasets.NAME] in shipyard.toml)."),
    engine: str = typer.Option("duckdb", "--engine", help="duckdb (one machine) or spark (pyspark)."),
) -> None:
    """Ingest raw files not ingested yet: typed, deduplicated, partitioned, atomic."""
    from shipyard.lake.ingest import ingest as run

    with _Spinner(f"ingesting {name}") as progress:
        r = run(name, engine=engine, progress=progress)
    print_table(f"ingest {name} ({engine})", ["", "value"], [
        ("raw files", r.raw_files), ("raw bytes", _human(r.raw_bytes)),
        ("rows read", r.rows_read), ("duplicates dropped", r.duplicates),
        ("rows written", r.rows_written), ("parquet files", r.files_written),
        ("parquet bytes", _human(r.bytes_written)), ("partitions touched", len(r.partitions)),
        ("new columns", ", ".join(r.new_columns) or "-"), ("lake version", r.version),
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
) -> None:
    """Run DuckDB SQL over the lake (partition columns prune files)."""
    import sys

    from shipyard.errors import InputError
    from shipyard.lake.ops import query as run

    if fmt not in ("table", "csv", "parquet"):
        raise InputError(f"unknown format {fmt!r}", hint="use table, csv or parquet")
    if fmt == "parquet" and not output:
        raise InputError("--format parquet needs --output FILE")
    if output:
        r = run(sql, output=output, fmt=None if fmt == "table" else fmt)
        err_console.print(f"wrote {r.row_count} rows to {r.output}")
        return
    if fmt == "csv":
        # DuckDB's CSV writer (its spelling of values), through a temp file: opening
        # /dev/stdout would truncate a redirected file (`>>`).
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory(prefix="shipyard-q-") as tmp:
            out = f"{tmp}/result.csv"
            run(sql, output=out, fmt="csv")
            with open(out, "rb") as f:
                sys.stdout.flush()
                shutil.copyfileobj(f, sys.stdout.buffer)
        return
    r = run(sql, limit=limit or None)
    print_table(None, r.columns, r.rows)
    if limit and r.row_count >= limit:
        err_console.print(f"[dim]first {limit} rows; --limit 0 for all, or --output FILE[/]")


@app.command()
def stats(name: str = typer.Argument(..., help="Dataset name.")) -> None:
    """Files, rows and bytes per partition, and the compression ratio against raw."""
    from shipyard.lake.ops import stats as run

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
    from shipyard.lake.ops import compact as run

    with _Spinner(f"compacting {name}") as progress:
        r = run(name, min_files=min_files, progress=progress)
    print_table(f"compact {name}", ["", "value"], [
        ("partitions compacted", r.partitions), ("files before", r.files_before),
        ("files after", r.files_after), ("rows", r.rows),
    ])


@app.command()
def ddl(
    name: str = typer.Argument(..., help="Dataset name."),
    dialect: str = typer.Option("athena", "--dialect", help="athena (Hive DDL) or trino (Hive connector)."),
    table: Optional[str] = typer.Option(None, "--table", help="Table name (default: the dataset's)."),
    database: Optional[str] = typer.Option(None, "--database", help="Athena database / Trino schema."),
    catalog: str = typer.Option("hive", "--catalog", help="Trino catalog of the Hive connector."),
) -> None:
    """Print Athena/Trino external-table DDL for the lake (partitioned, Parquet, its location)."""
    from shipyard.lake.ops import ddl as run

    typer.echo(run(name, dialect=dialect, table=table, database=database, catalog=catalog), nl=False)
