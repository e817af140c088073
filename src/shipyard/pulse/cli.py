"""`shipyard pulse ...`: a thin client of shipyard.pulse's library API."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import typer
from rich.markup import escape

from shipyard.console import console, err_console, print_table
from shipyard.errors import ConfigError, InputError
from shipyard.pulse.config import ParseLimits, load_dir
from shipyard.pulse.history import WINDOWS, open_history
from shipyard.pulse.schedule import parse_duration
from shipyard.settings import get_settings

app = typer.Typer(help="pulse: uptime monitors as code (Heartbeat-style YAML files, alerts, status page).",
                  no_args_is_help=True)


def _watchdog(seconds: float) -> None:
    """After SIGTERM: if the service has not stopped within `seconds` (a check stuck in a
    thread the loop cannot cancel, e.g. a resolver call), exit anyway."""
    def bite() -> None:
        err_console.print(f"pulse: not stopped {seconds:g}s after the signal; exiting", highlight=False)
        os._exit(1)

    t = threading.Timer(seconds, bite)
    t.daemon = True
    t.start()


@app.command("run")
def run_cmd(
    config_dir: Path = typer.Option(..., "--config-dir", "-c", help="Folder of monitor YAML files (reloaded on change)."),
    port: int = typer.Option(None, "--port", "-p", help="Serve the status page, JSON API and /metrics on this port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address for --port (0.0.0.0 to listen on all)."),
    database_url: str = typer.Option(None, "--database-url",
                                     help="History database: postgresql://... or a SQLite path "
                                          "(default: pulse.database_url, else ./pulse.sqlite3)."),
    sync_from: str = typer.Option(None, "--sync-from", help="s3://bucket/prefix or a folder: mirror it into "
                                  "--config-dir at start and every --sync-every (atomic, like `pulse sync`)."),
    sync_every: str = typer.Option("60s", "--sync-every", help="How often --sync-from is mirrored (e.g. 60s, 5m)."),
) -> None:
    """Run the monitors until Ctrl-C / SIGTERM (stops within pulse.stop_timeout + a second or two)."""
    # Imported here to cut `shipyard --help` start-up: the service pulls in httpx, FastAPI, uvicorn.
    from shipyard.pulse.service import PulseService
    from shipyard.pulse.web import serve  # start-up cost too: FastAPI and uvicorn

    settings = get_settings()
    try:
        every = parse_duration(sync_every)
    except ValueError as exc:
        raise InputError(f"--sync-every: {exc}") from None
    if every < 1:
        raise InputError("--sync-every must be at least 1s")
    history = open_history(database_url or settings.pulse.database_url, default_dir=settings.config_dir)
    svc = PulseService(config_dir, settings=settings, history=history, sync_from=sync_from, sync_every=every)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            svc.stop()
            _watchdog(settings.pulse.stop_timeout + 3)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)

        def ready(s: PulseService) -> None:
            where = f", status page http://{host}:{s.port}/" if s.port else ""
            err_console.print(f"pulse: {len(s.monitors)} monitors from {config_dir}{where}; Ctrl-C to stop")

        await svc.run(port=port, host=host, ready=ready, serve=serve)

    try:
        asyncio.run(main())
    finally:
        history.close()


@app.command("validate")
def validate_cmd(
    config_dir: Path = typer.Argument(..., help="Folder of monitor YAML files (e.g. your repo checkout)."),
) -> None:
    """Check every monitor file (for CI before syncing): exit 2 with file:line on errors."""
    res = load_dir(config_dir, ParseLimits.from_settings(get_settings().pulse))
    rows = [(m.id, m.type, m.schedule.text, ", ".join(m.public_targets), m.channel or "(default)",
             f"{m.failure_threshold}/{m.success_threshold}", f"{m.file}:{m.line}")
            for m in res.monitors.values()]
    if rows:
        print_table(f"{len(rows)} monitors in {config_dir}",
                    ["id", "type", "schedule", "targets", "channel", "fail/ok", "file"], rows)
    if res.problems:
        for p in res.problems:
            # The file's own text (names, values) is escaped: rich must not read it as markup.
            err_console.print(f"[bold red]{escape(p.where)}[/]: {escape(p.message)}"
                              + (f"\n  [yellow]fix:[/] {escape(p.hint)}" if p.hint else ""), highlight=False)
        raise InputError(f"{len(res.problems)} invalid monitor file(s) in {config_dir}",
                         hint="fix the lines above; the running monitor keeps the last good version meanwhile")
    console.print(f"[green]ok[/]: {len(rows)} monitors valid")


@app.command("sync")
def sync_cmd(
    source: str = typer.Option(..., "--from", help="s3://bucket/prefix or a folder holding the committed monitor files."),
    target: str = typer.Option(..., "--to", help="The monitor's config folder (becomes a symlink to the current "
                               "version), or s3://bucket/prefix to publish a checkout (CI)."),
    keep: int = typer.Option(3, "--keep", help="Old versions to keep on disk."),
    allow_empty: bool = typer.Option(False, "--allow-empty", help="Allow an empty source (removes every monitor)."),
) -> None:
    """Mirror monitor files into the monitor's folder atomically (deletions propagate). For cron or CI."""
    # Imported here to cut `shipyard --help` start-up: the store pulls in boto3 for s3:// sources.
    from shipyard.pulse.sync import sync

    with console.status(f"syncing {source} -> {target}"):
        rep = sync(source, target, keep=keep, allow_empty=allow_empty)
    if not rep.changed:
        console.print(f"up to date: {rep.files} files from {rep.source} (version {rep.version})")
    else:
        rows = [(k, "added") for k in rep.added] + [(k, "updated") for k in rep.updated] + \
               [(k, "removed") for k in rep.removed]
        print_table(f"synced {rep.files} files -> {rep.target} ({rep.version})", ["file", "change"], rows)
    for p in rep.problems:
        err_console.print(f"[yellow]warning[/]: {p} (the monitor keeps the file's last good version)",
                          highlight=False)


@app.command("ping")
def ping_cmd(
    token: str = typer.Argument(..., help="The push monitor's token."),
    url: str = typer.Option("http://127.0.0.1:8080", "--url", envvar="SHIPYARD_PULSE_URL",
                            help="Where `pulse run --port` serves (env SHIPYARD_PULSE_URL)."),
    status: str = typer.Option("up", "--status", help="up, or down to report a failure now."),
    msg: str = typer.Option(None, "--msg", help="A short message shown with a down ping."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds to wait for the monitor."),
) -> None:
    """Tell a push monitor "I ran" (for crons): POST /api/push/TOKEN."""
    # Imported here to cut `shipyard --help` start-up.
    import httpx

    try:
        r = httpx.post(f"{url.rstrip('/')}/api/push/{token}", params={"status": status, "msg": msg or ""},
                       timeout=timeout)
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach the pulse monitor at {url}: {exc}",
                          hint="check --url (the address `pulse run --port` serves on)") from None
    text = r.json().get("message", r.text) if r.headers.get("content-type", "").startswith("application/json") else r.text
    if r.status_code != 200:
        raise InputError(f"push refused ({r.status_code}): {text}",
                         hint="check the token" if r.status_code == 404 else None)
    console.print(text, highlight=False)


@app.command("demo")
def demo_cmd(
    seconds: float = typer.Option(6.0, "--seconds", help="How long to run the monitors."),
    port: int = typer.Option(None, "--port", "-p", help="Also serve the status page on this port meanwhile."),
) -> None:
    """Run pulse on an embedded example (a local service with a healthy, a slow and a broken
    endpoint, and a push monitor nobody pings); no cloud account, nothing left behind."""
    # Imported here to cut `shipyard --help` start-up: the demo runs the whole service.
    from shipyard.pulse.demo import run_demo

    raise typer.Exit(run_demo(seconds, port))


@app.command("status")
def status_cmd(
    database_url: str = typer.Option(None, "--database-url", help="History database (default: pulse.database_url / ./pulse.sqlite3)."),
    incidents: int = typer.Option(10, "--incidents", help="How many recent incidents to list."),
) -> None:
    """Uptime per monitor (24h / 7d / 30d) and recent incidents, from the recorded history."""
    settings = get_settings()
    url = database_url or settings.pulse.database_url
    if not url and not (settings.config_dir / "pulse.sqlite3").exists():
        raise ConfigError("no pulse history here (./pulse.sqlite3 is missing)",
                          hint="run this where `shipyard pulse run` runs, or pass --database-url")
    h = open_history(url, default_dir=settings.config_dir)
    try:
        now = time.time()
        up = h.uptime(now)
        print_table("uptime", ["monitor", *WINDOWS],
                    [(mid, *("n/a" if v[w] is None else f"{v[w] * 100:.2f}%" for w in WINDOWS))
                     for mid, v in sorted(up.items())])
        rows = [(i["monitor_id"], time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(i["started"])),
                 time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(i["resolved"])) if i["resolved"] else "ongoing",
                 i["error"] or "") for i in h.incidents(limit=incidents)]
        print_table("recent incidents (UTC)", ["monitor", "started", "resolved", "error"], rows)
    finally:
        h.close()
