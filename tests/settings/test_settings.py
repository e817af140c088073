from shipyard.settings import get_settings


def test_env_nested_destination(monkeypatch):
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__POSTGRES__URL", "postgresql://u@h:5432/db")
    s = get_settings(fresh=True)
    assert s.destinations["postgres"].url == "postgresql://u@h:5432/db"


def test_toml_file_and_env_precedence(tmp_path, monkeypatch):
    cfg = tmp_path / "conf" / "shipyard.toml"
    cfg.parent.mkdir()
    cfg.write_text('outbox = "from-toml.jsonl"\n[destinations.pg]\nurl = "postgresql://a@b/c"\ntype = "postgres"\n'
                   '[lake.datasets.events]\nraw = "raw/events"\n')
    monkeypatch.setenv("SHIPYARD_CONFIG", str(cfg))
    monkeypatch.delenv("SHIPYARD_OUTBOX")
    s = get_settings(fresh=True)
    assert str(s.outbox) == "from-toml.jsonl"
    assert s.destinations["pg"].type == "postgres"
    assert s.lake.datasets["events"]["raw"] == "raw/events"
    assert s.config_dir == cfg.parent.resolve()
    monkeypatch.setenv("SHIPYARD_OUTBOX", "env.jsonl")
    assert str(get_settings(fresh=True).outbox) == "env.jsonl"


def test_slack_token_env(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SHIPYARD_SLACK_BASE_URL", "http://127.0.0.1:1/api/")
    s = get_settings(fresh=True)
    assert s.slack_bot_token == "xoxb-1"
    assert s.slack_base_url == "http://127.0.0.1:1/api/"
