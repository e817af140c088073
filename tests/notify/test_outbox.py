from shipyard.notify import Notice, OutboxNotifier, get_notifier
from tests.helpers import read_outbox


def test_outbox_appends_one_json_line_per_notice(tmp_path, capsys):
    n = OutboxNotifier(tmp_path / "out" / "outbox.jsonl")
    n.send(Notice(tool="t", level="success", title="done", message="3 rows", fields={"rows": 3}))
    n.send(Notice(tool="t", level="failure", title="bad", message="boom ✗", channel="c"))
    lines = read_outbox(tmp_path / "out" / "outbox.jsonl")
    assert [x["title"] for x in lines] == ["done", "bad"]
    assert lines[1]["message"] == "boom ✗"
    assert "done: 3 rows" in capsys.readouterr().err


def test_default_notifier_is_outbox_at_env_path(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIPYARD_OUTBOX", str(tmp_path / "o.jsonl"))
    from shipyard.settings import get_settings

    n = get_notifier(get_settings(fresh=True))
    assert isinstance(n, OutboxNotifier)
    n.send(Notice(tool="t", level="info", title="x", message="y"))
    assert [x["title"] for x in read_outbox(tmp_path / "o.jsonl")] == ["x"]


def test_outbox_masks_secrets(tmp_path, capsys):
    n = OutboxNotifier(tmp_path / "o.jsonl")
    n.send(Notice(tool="t", level="failure", title="load failed",
                  message="could not connect to postgresql://loader:hunter22@db/x",
                  fields={"dsn": "password=hunter22"}))
    assert "hunter22" not in (tmp_path / "o.jsonl").read_text()
    assert "hunter22" not in capsys.readouterr().err
