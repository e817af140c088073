"""Terminal rendering never rewrites a message: no emoji codes, no markup from user text."""

import io

from rich.console import Console

import shipyard.console as con
from shipyard.errors import InputError

TRICKY = "file [bold]a[/bold].csv :x: failed [red]really[/] :white_check_mark:"


def _capture(monkeypatch, name: str) -> io.StringIO:
    buf = io.StringIO()
    real = getattr(con, name)
    fake = Console(file=buf, width=400, emoji=real._emoji, color_system=None)
    monkeypatch.setattr(con, name, fake)
    return buf


def test_errors_print_the_message_exactly(monkeypatch):
    buf = _capture(monkeypatch, "err_console")
    con.print_error(InputError(TRICKY, hint="rename :x: [b]it[/b]"))
    out = buf.getvalue()
    assert TRICKY in out and "rename :x: [b]it[/b]" in out
    assert "❌" not in out and "✅" not in out


def test_table_cells_and_titles_are_plain_text(monkeypatch):
    buf = _capture(monkeypatch, "console")
    con.print_table("load [x] :x:", ["file", "why"], [("b[1].csv", TRICKY)])
    out = buf.getvalue()
    assert "load [x] :x:" in out and "b[1].csv" in out and TRICKY in out
    assert "❌" not in out


def test_the_cli_prints_a_jarvis_channel_as_written(tmp_path):
    from typer.testing import CliRunner

    from shipyard.cli import app

    r = CliRunner().invoke(app, ["jarvis", "send", "-c", "ops[bold]:x:", "-m", "hello :x:"])
    assert r.exit_code == 0, r.output
    assert "#ops[bold]:x:" in r.output.replace("\n", "")
