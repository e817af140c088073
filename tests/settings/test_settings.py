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


# -- declared settings: unknown keys ----------------------------------------------------------

import logging  # noqa: E402

import pytest  # noqa: E402

from shipyard.errors import ConfigError  # noqa: E402
from shipyard.settings import LimitsSettings, Settings, unknown_keys  # noqa: E402


def test_every_section_forbids_undeclared_keys():
    for name, field in Settings.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, LimitsSettings.__mro__[1]):
            assert ann.model_config.get("extra") == "forbid", name
    with pytest.raises(Exception, match="extra"):
        LimitsSettings(max_bytes=1)


def test_misspelt_env_variable_warns_with_did_you_mean_and_is_ignored(monkeypatch, caplog):
    import shipyard.settings_sources as mod

    mod._warned_env.clear()
    monkeypatch.setenv("SHIPYARD_JARVIS__TIMOUT", "5")
    monkeypatch.setenv("SHIPYARD_OUTBX", "x.jsonl")
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__PG__URLL", "postgresql://a@b/c")
    monkeypatch.setenv("SHIPYARD_TEST_ANYTHING", "ok")  # the test suite's own variables are not settings
    with caplog.at_level(logging.WARNING, "shipyard.settings"):
        s = get_settings(fresh=True)
    assert s.jarvis.timeout == 30
    text = caplog.text
    assert "SHIPYARD_JARVIS__TIMOUT is ignored: did you mean SHIPYARD_JARVIS__TIMEOUT?" in text
    assert "SHIPYARD_OUTBX is ignored: did you mean SHIPYARD_OUTBOX?" in text
    assert "SHIPYARD_DESTINATIONS__PG__URLL is ignored: did you mean SHIPYARD_DESTINATIONS__PG__URL?" in text
    assert "SHIPYARD_TEST_ANYTHING" not in text


def test_unknown_toml_key_is_an_error_naming_file_and_key(tmp_path, monkeypatch):
    cfg = tmp_path / "shipyard.toml"
    cfg.write_text('[jarvis]\nerror_chanel = "ops"\n')
    monkeypatch.setenv("SHIPYARD_CONFIG", str(cfg))
    with pytest.raises(ConfigError) as e:
        get_settings(fresh=True)
    assert str(cfg) in e.value.message and "'jarvis.error_chanel'" in e.value.message
    assert "did you mean 'error_channel'?" in e.value.message
    cfg.write_text('[jarvsi]\nerror_channel = "ops"\n')
    with pytest.raises(ConfigError, match="'jarvsi': did you mean 'jarvis'"):
        get_settings(fresh=True)
    cfg.write_text('[destinations.pg]\nurl = "x"\ntpye = "postgres"\n')
    with pytest.raises(ConfigError, match="'destinations.pg.tpye': did you mean 'type'"):
        get_settings(fresh=True)


def test_free_form_tables_stay_free(tmp_path, monkeypatch):
    cfg = tmp_path / "shipyard.toml"
    cfg.write_text('[lake.datasets.events]\nraw = "r"\nanything = 1\n[lake.datasets.events.types]\na = "INT"\n')
    monkeypatch.setenv("SHIPYARD_CONFIG", str(cfg))
    assert get_settings(fresh=True).lake.datasets["events"]["anything"] == 1


def test_a_bad_value_is_a_config_error_naming_the_variable_without_echoing_secrets(monkeypatch):
    monkeypatch.setenv("SHIPYARD_JARVIS__TIMEOUT", "soon")
    with pytest.raises(ConfigError) as e:
        get_settings(fresh=True)
    assert "jarvis.timeout" in e.value.message and "SHIPYARD_JARVIS__TIMEOUT" in e.value.hint
    monkeypatch.delenv("SHIPYARD_JARVIS__TIMEOUT")
    monkeypatch.setenv("SHIPYARD_PULSE__CONCURRENCY", "postgresql://u:hunter2secret@h/d")
    with pytest.raises(ConfigError) as e:
        get_settings(fresh=True)
    assert "hunter2secret" not in str(e.value)


def test_jarvis_options_are_declared_fields(monkeypatch):
    monkeypatch.setenv("SHIPYARD_JARVIS__RATE_LIMIT_RETRIES", "7")
    monkeypatch.setenv("SHIPYARD_JARVIS__ATTACHMENT_ROOTS", '["/srv/reports"]')
    j = get_settings(fresh=True).jarvis
    assert j.rate_limit_retries == 7 and [str(p) for p in j.attachment_roots] == ["/srv/reports"]


def test_unknown_keys_walks_models_dicts_and_any():
    data = {"jarvis": {"timeout": 1, "nope": 2}, "destinations": {"x": {"url": "u", "bad": 1}},
            "lake": {"datasets": {"e": {"whatever": {"deep": 1}}}}}
    assert sorted(".".join(p) for p, _ in unknown_keys(Settings, data)) == ["destinations.x.bad", "jarvis.nope"]


def test_sub_keys_of_a_plain_value_are_unknown(monkeypatch, caplog, tmp_path):
    import shipyard.settings_sources as mod

    mod._warned_env.clear()
    monkeypatch.setenv("SHIPYARD_OUTBOX__X", "1")
    with caplog.at_level(logging.WARNING, "shipyard.settings"):
        get_settings(fresh=True)
    assert "SHIPYARD_OUTBOX__X is ignored" in caplog.text
    monkeypatch.delenv("SHIPYARD_OUTBOX__X")
    cfg = tmp_path / "shipyard.toml"
    cfg.write_text('[jarvis.timeout]\nx = 1\n')
    monkeypatch.setenv("SHIPYARD_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match="'jarvis.timeout.x'"):
        get_settings(fresh=True)
