"""The umbrella CLI: every command answers --help; errors are short unless --debug."""

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from shipyard.cli import app


def _all_command_paths():
    root = typer.main.get_command(app)
    paths = []

    def walk(cmd, path):
        paths.append(path)
        # Typer vendors its own click: recognise groups by behaviour, not by class.
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(None):
                walk(cmd.get_command(None, name), path + [name])

    walk(root, [])
    return paths


def test_every_command_has_help():
    runner = CliRunner()
    paths = _all_command_paths()
    assert ["propagator"] in paths and ["jarvis"] in paths and ["lake"] in paths and ["pulse"] in paths
    for path in paths:
        result = runner.invoke(app, path + ["--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


@pytest.mark.slow  # a real subprocess or a big stream: seconds, not milliseconds
def test_error_without_traceback_and_with_debug():
    # An unknown lake dataset / bad input surfaces as a ShipyardError; here we use a bucket
    # path that cannot be a folder to trigger our own error path through the real entry point.
    code = (
        "import sys; from shipyard.cli import app, main\n"
        "import typer\n"
        "from shipyard.errors import InputError\n"
        "@app.command('boom', hidden=True)\n"
        "def boom():\n"
        "    raise InputError('bad thing', hint='do the right thing')\n"
        "main(sys.argv[1:])\n"
    )
    r = subprocess.run([sys.executable, "-c", code, "boom"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "bad thing" in r.stderr and "do the right thing" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-c", code, "--debug", "boom"], capture_output=True, text=True)
    assert r.returncode != 0
    assert "Traceback" in r.stderr


def test_debug_tracebacks_are_redacted_too():
    code = (
        "import sys; from shipyard.cli import app, main\n"
        "@app.command('boom', hidden=True)\n"
        "def boom():\n"
        "    raise RuntimeError('cannot reach postgresql://loader:p@ss wörd%1@db.internal/x')\n"
        "main(sys.argv[1:])\n"
    )
    for args in (["boom"], ["--debug", "boom"]):
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
        assert r.returncode == 1 and "RuntimeError" in r.stderr and "db.internal" in r.stderr
        assert "wörd" not in r.stderr and "ss w" not in r.stderr, r.stderr


def test_version():
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and "shipyard" in r.output


def test_help_loads_no_tool():
    """`shipyard --help` lists the tools without importing them (start-up cost: DuckDB, pyarrow,
    boto3, FastAPI load only when a tool's command runs)."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "shipyard.cli", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "propagator" in r.stdout and "pulse" in r.stdout
    loaded = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if "|" in line}
    heavy = sorted(m for m in loaded if m.split(".")[0] in ("duckdb", "pyarrow", "boto3", "fastapi", "slack_sdk")
                   or m.startswith(("shipyard.propagator", "shipyard.lake", "shipyard.pulse", "shipyard.jarvis")))
    assert heavy == []


def test_a_misspelt_tool_gets_a_did_you_mean():
    r = CliRunner().invoke(app, ["propagatr"])
    assert r.exit_code != 0 and "Did you mean 'propagator'?" in r.output
