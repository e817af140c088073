"""jarvis as the project's Notifier (shipyard.notify.get_notifier with SLACK_BOT_TOKEN set)."""

from shipyard.jarvis.notifier import SlackNotifier
from shipyard.notify import Attachment, Notice, OutboxNotifier, get_notifier
from shipyard.settings import get_settings
from shipyard.store import open_store
from tests.helpers import read_outbox



def test_get_notifier_is_slack_with_a_token_and_outbox_without(slack, monkeypatch):
    assert isinstance(get_notifier(get_settings()), SlackNotifier)
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    assert isinstance(get_notifier(get_settings(fresh=True)), OutboxNotifier)


def test_notice_goes_to_its_channel_with_title_message_and_fields(slack, tmp_path):
    n = get_notifier(get_settings())
    n.send(Notice(tool="propagator", level="success", title="loaded events.csv", message="3 rows",
                  channel="data-loader-notification", fields={"table": "public.events", "rows": 3}))
    (msg,) = slack.messages_in("data-loader-notification")
    assert msg["blocks"][0]["text"]["text"] == ":white_check_mark: loaded events.csv"
    body = msg["blocks"][1]["text"]["text"]
    assert body.startswith("3 rows\n*table*: public.events · *rows*: 3\n_propagator · success · ")
    assert read_outbox() == []


def test_notice_without_channel_uses_the_configured_default(slack, monkeypatch):
    slack.add_channel("ops")
    get_notifier(get_settings()).send(Notice(tool="t", level="info", title="a", message="b"))
    assert len(slack.messages_in("data-loader-notification")) == 1
    monkeypatch.setenv("SHIPYARD_JARVIS__DEFAULT_CHANNEL", "ops")
    get_notifier(get_settings(fresh=True)).send(Notice(tool="t", level="info", title="a", message="b"))
    assert len(slack.messages_in("ops")) == 1


def test_failure_notice_carries_the_error_report_from_the_store(slack, store_url):
    # The propagator passes store.url (an absolute folder or s3://bucket/prefix) and a key
    # relative to it.
    store = open_store(store_url)
    key = "destination=duckdb/database=main/table_name=events/failed/bad.csv.error.json"
    store.put(key, b'{"error": "column count"}')
    get_notifier(get_settings()).send(Notice(
        tool="propagator", level="failure", title="bad.csv rejected", message="column count mismatch",
        channel="data-loader-notification", attachment=Attachment(store.url, key)))
    (msg,) = slack.messages_in("data-loader-notification")
    (f,) = slack.files.values()
    assert f["data"] == b'{"error": "column count"}' and f["filename"] == "bad.csv.error.json"
    assert f["thread_ts"] == msg["ts"]


def test_a_failing_slack_never_raises_and_keeps_the_notice(slack, tmp_path):
    """The caller's loop (the propagator's watch loop) keeps running whatever Slack does."""
    n = get_notifier(get_settings())
    notices = [Notice(tool="propagator", level="info", title=f"n{i}", message="m", channel=ch)
               for i, ch in enumerate(["data-loader-notification", "no-such-channel", "data-loader-notification"])]
    for notice in notices:
        n.send(notice)  # must not raise
    assert [m["blocks"][0]["text"]["text"] for m in slack.messages_in("data-loader-notification")] == \
        [":information_source: n0", ":information_source: n2"]
    assert "#no-such-channel" in slack.messages_in("jarvis-error-notifications")[0]["text"]
    kept = read_outbox()
    assert [x["title"] for x in kept] == ["n1"] and kept[0]["channel"] == "no-such-channel"


def test_slack_down_keeps_notices_in_the_outbox(slack, tmp_path):
    n = get_notifier(get_settings())
    slack.stop()
    n.send(Notice(tool="pulse", level="failure", title="api down", message="3 checks failed", channel="pulse-alerts"))
    titles = [x["title"] for x in read_outbox()]
    # the error report (the error channel is unreachable too) and the notice itself
    assert titles == ["could not deliver to #pulse-alerts", "api down"]


def test_a_bad_channel_name_in_a_notice_is_reported_not_raised(slack, tmp_path):
    get_notifier(get_settings()).send(Notice(tool="t", level="warning", title="x", message="y", channel="two words"))
    assert "did you mean" in slack.messages_in("jarvis-error-notifications")[0]["text"]
    assert read_outbox()[0]["title"] == "x"


def test_slack_notices_are_redacted_like_the_outbox(slack):
    n = get_notifier(get_settings(fresh=True))
    n.send(Notice(tool="propagator", level="failure", title="load failed for postgresql://u:hunter22@db/x",
                  message="could not connect: postgresql://loader:p@ss wörd@db:5432/x password=hunter22",
                  fields={"dsn": "password='p@ss wörd'"}))
    (msg,) = slack.messages_in("data-loader-notification")
    text = str(msg)
    assert "hunter22" not in text and "wörd" not in text and "ss w" not in text
    assert "db:5432/x" in text  # the rest of the message is still there
