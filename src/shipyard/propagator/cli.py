"""`shipyard propagator ...`: a thin client of shipyard.propagator's library API."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import typer

from shipyard.console import console
from shipyard.errors import InputError
from shipyard.settings import get_settings
from shipyard.propagator.display import print_checks, print_history, print_outcomes
from shipyard.propagator.offline import plan_offline
from shipyard.propagator.offline import validate as validate_files
from shipyard.propagator.outcomes import Outcome

app = typer.Typer(
    help="propagator: drop schema specs and data files into a bucket; tables are created, changed and loaded.",
    no_args_is_help=True,
)

BUCKET_HELP = "The bucket: a local folder, or s3://bucket or s3://bucket/prefix."


@app.command()
def process(
    bucket: str = typer.Option(..., "--bucket", "-b", help=BUCKET_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the outcomes as JSON lines."),
) -> None:
    """Process every pending file once, then exit (exit code 1 if any file failed)."""
    from shipyard.propagator.runner import Propagator  # start-up cost: drivers load on use

    with Propagator.from_settings(bucket, must_exist=True) as p:
        with console.status("processing pending files...", spinner="dots"):
            outcomes = p.process_pending()
    if as_json:
        for o in outcomes:
            typer.echo(json.dumps(o.to_dict(), default=str))
    elif outcomes:
        print_outcomes(outcomes)
    else:
        console.print(f"nothing pending in {bucket}")
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(1)


@app.command()
def watch(
    bucket: str = typer.Option(..., "--bucket", "-b", help=BUCKET_HELP),
    interval: float = typer.Option(None, "--interval", help="Seconds between polls (default: propagator.poll_interval)."),
    queue: str = typer.Option(None, "--queue", help="Consume S3 events from this SQS queue URL instead of polling."),
) -> None:
    """Keep processing new files until interrupted (Ctrl-C); a bad file never stops it."""
    from shipyard.propagator.runner import Propagator  # start-up cost: drivers load on use

    if queue:
        from shipyard.propagator.aws import consume_queue  # start-up cost: boto3 only for --queue

        stats = consume_queue(queue_url=queue, bucket=bucket)
        console.print(f"stopped: {stats.received} message(s) received, "
                      f"{stats.deleted} done, {stats.kept} left for a retry")
        return

    stop = threading.Event()

    def show(o: Outcome) -> None:
        print_outcomes([o], title=None)

    with Propagator.from_settings(bucket, must_exist=True) as p:
        console.print(f"watching {p.store.url} (Ctrl-C to stop)")
        try:
            p.watch(interval=interval, stop=stop, on_outcome=show)
        except KeyboardInterrupt:
            stop.set()
            console.print("stopped")


@app.command()
def plan(
    key: str = typer.Argument(..., help="The object key, relative to the bucket."),
    bucket: str = typer.Option(..., "--bucket", "-b", help=BUCKET_HELP),
    offline: bool = typer.Option(False, "--offline", help="Do not connect: create and alter SQL from the specs "
                                 "alone (an alter needs its table's create spec in the bucket)."),
    dialect: str = typer.Option(None, "--dialect", help="redshift, postgres, mysql or duckdb (default: the "
                                "destination's type)."),
) -> None:
    """Print the SQL a file would run, without running it or moving the file."""
    if offline:
        typer.echo(plan_offline(bucket, key, dialect, get_settings()).render())
        return
    from shipyard.propagator.runner import Propagator  # start-up cost: drivers load on use

    with Propagator.from_settings(bucket, must_exist=True) as p:
        typer.echo(p.plan_key(key).render())


@app.command()
def validate(
    files: list[Path] = typer.Argument(..., help="Spec and data files (local paths; under destination=... "
                                       "folders or not)."),
    dialect: str = typer.Option(None, "--dialect", help="redshift, postgres, mysql or duckdb (default: the "
                                "key's destination=, else postgres)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line per file."),
) -> None:
    """Check specs, and data files' headers against them, with no connection at all (for CI)."""
    checks = validate_files([str(f) for f in files], dialect)
    if as_json:
        for c in checks:
            typer.echo(json.dumps(c.to_dict(), default=str))
    else:
        print_checks(checks)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@app.command()
def history(
    bucket: str = typer.Option(..., "--bucket", "-b", help=BUCKET_HELP),
    table: str = typer.Option(None, "--table", help="Only this table: `table` or `database.table`."),
    status: str = typer.Option(None, "--status", help="succeeded or failed."),
    since: str = typer.Option(None, "--since", help="Only files processed this recently: 30m, 12h, 1d, 2w."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line per file."),
) -> None:
    """What happened to each file: the ledger (succeeded) and the failure reports, oldest first."""
    from shipyard.propagator.history import history as read_history  # start-up cost: drivers load on use
    from shipyard.propagator.history import parse_since  # start-up cost: as above
    from shipyard.propagator.runner import Propagator  # start-up cost: drivers load on use

    if status not in (None, "succeeded", "failed"):
        raise InputError(f"--status {status!r} is not a status", hint="use --status succeeded or --status failed")
    window = parse_since(since) if since else None
    with Propagator.from_settings(bucket, must_exist=True) as p:
        entries = read_history(p, table=table, status=status, since=window)
    if as_json:
        for e in entries:
            typer.echo(json.dumps(e.to_dict(), default=str))
    else:
        print_history(entries)


@app.command()
def retry(
    key: str = typer.Argument(..., help="The key of a file under failed/ (as `history --status failed` shows)."),
    bucket: str = typer.Option(..., "--bucket", "-b", help=BUCKET_HELP),
    force: bool = typer.Option(False, "--force", help="Move it back even if its checks still fail."),
) -> None:
    """Move a failed file back to its input folder, after checking that the cause is fixed."""
    from shipyard.propagator.history import retry as retry_file  # start-up cost: drivers load on use
    from shipyard.propagator.runner import Propagator  # start-up cost: drivers load on use

    with Propagator.from_settings(bucket, must_exist=True) as p:
        back = retry_file(p, key, force=force)
    console.print(f"moved back to {back}; the next `process` or `watch` pass loads it")


@app.command()
def infer(
    file: Path = typer.Argument(..., help="A sample: .csv, .jsonl, .json (array) or .parquet."),
    dialect: str = typer.Option("postgres", "--dialect", help="The spec is checked for this dialect."),
) -> None:
    """Print a create spec (types, a primary key guess, a sort key) that loads this file."""
    from shipyard.propagator.infer import infer_spec  # start-up cost: DuckDB's sniffer

    typer.echo(json.dumps(infer_spec(str(file), dialect), indent=2))


@app.command()
def schema(kind: str = typer.Argument(..., help="create or update")) -> None:
    """Print the JSON Schema of a create or update spec."""
    from shipyard.propagator.specs import create_schema, update_schema  # start-up cost: pydantic models

    if kind not in ("create", "update"):
        raise InputError(f"unknown spec kind {kind!r}", hint="use `schema create` or `schema update`")
    typer.echo(json.dumps(create_schema() if kind == "create" else update_schema(), indent=2))


@app.command()
def demo(
    bucket: Path = typer.Option(Path("demo-bucket"), "--bucket", help="The local bucket folder to lay the examples into."),
    warehouse: Path = typer.Option(Path("warehouse.duckdb"), "--warehouse", help="The DuckDB file to load into."),
) -> None:
    """Lay the example files into a local bucket, process them into DuckDB, show the outcome."""
    from shipyard.propagator.demo import run_demo  # start-up cost: the demo loads DuckDB

    raise typer.Exit(run_demo(bucket, warehouse))
