"""Sending through slack_sdk's real WebClient to the fake Slack Web API: every path and error."""

import json
import os
import tempfile
import time

import boto3
import pytest

from shipyard.errors import ConfigError, InputError, NotFoundError, TransientError
from shipyard.jarvis import deliver, send
from shipyard.settings import get_settings
from shipyard.store import open_store
from tests.helpers import free_port, read_outbox

ERRORS = "jarvis-error-notifications"


def _report(slack) -> str:
    msgs = slack.messages_in(ERRORS)
    assert len(msgs) == 1, msgs
    return msgs[0]["text"]



def test_send_resolves_the_name_through_the_bots_conversations_and_caches_it(slack):
    r1 = send("load finished", "data-team")
    r2 = send("second", "#data-team", heading="ETL")
    cid = slack.channel("data-team").id
    assert (r1.ok, r1.channel, r1.channel_id) == (True, "data-team", cid)
    assert r2.ts != r1.ts
    posts = slack.calls_to("chat.postMessage")
    assert [c.params["channel"] for c in posts] == [cid, cid]
    assert posts[0].params["text"] == "load finished"
    assert posts[0].headers["content-type"].startswith("application/json")
    assert posts[1].params["blocks"][0]["type"] == "header"
    # users.conversations once: the second send used the cache
    assert len(slack.calls_to("users.conversations")) == 1
    assert slack.calls_to("users.conversations")[0].params["types"] == "public_channel,private_channel"
    assert slack.messages_in(ERRORS) == []


def test_message_without_heading_mentions_and_unicode_arrive_as_written(slack):
    send("<!channel> Failure in deleting file 日本語 🚀 <@UNKDY50FH> a<b", "data-team")
    msg = slack.messages_in("data-team")[0]
    assert [b["type"] for b in msg["blocks"]] == ["section"]
    assert msg["blocks"][0]["text"]["text"] == "<!channel> Failure in deleting file 日本語 🚀 <@UNKDY50FH> a&lt;b"
    assert msg["text"] == msg["blocks"][0]["text"]["text"]


def test_channel_ids_are_used_directly(slack):
    cid = slack.channel("data-team").id
    r = send("by id", cid)
    assert r.channel_id == cid and slack.calls_to("users.conversations") == []


def test_private_channel_the_bot_is_in(slack):
    gid = slack.add_channel("secret-ops", private=True)
    assert send("psst", "secret-ops").channel_id == gid


def test_pagination_finds_a_channel_on_a_later_page(slack):
    for i in range(450):
        slack.add_channel(f"filler-{i:03d}")
    last = slack.add_channel("the-last-one")
    assert send("found", "the-last-one").channel_id == last
    pages = slack.calls_to("users.conversations")
    assert len(pages) == 3 and pages[1].params["cursor"]


def test_local_attachment_is_uploaded_into_the_message_thread(slack, tmp_path):
    (tmp_path / "drop" / "etl").mkdir(parents=True)
    (tmp_path / "drop" / "etl" / "errors.csv").write_text("id,error\n1,bad ✗\n", encoding="utf-8")
    # `bucket` as a relative folder path, as a local caller would send it
    r = send("see attached", "data-team", attachment={"bucket": "drop", "key": "etl/errors.csv"},
             local_roots=[tmp_path])
    f = slack.files[r.file_id]
    assert f["data"] == "id,error\n1,bad ✗\n".encode()
    assert f["filename"] == "errors.csv" and f["channel"] == r.channel_id and f["thread_ts"] == r.ts
    steps = [c.method for c in slack.calls]
    assert steps == ["users.conversations", "chat.postMessage", "files.getUploadURLExternal", "upload",
                     "files.completeUploadExternal"]


def test_5mb_attachment_from_s3_is_streamed_and_uploaded(slack, s3_bucket, tmp_path, monkeypatch):
    data = os.urandom(5 * 1024 * 1024 + 123)
    bucket = s3_bucket.removeprefix("s3://")
    boto3.client("s3").put_object(Bucket=bucket, Key="data-team/big.bin", Body=data)
    staging = tmp_path / "staging"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))
    # A plain bucket name, exactly as the blog's callers send it.
    r = send("5 MB", "data-team", heading="big", attachment={"bucket": bucket, "key": "data-team/big.bin"})
    f = slack.files[r.file_id]
    assert f["length"] == len(data) and f["data"] == data and f["thread_ts"] == r.ts
    assert list((staging / "shipyard-spool").iterdir()) == []  # the temporary copy is gone


def test_5mb_local_attachment_and_s3_url_with_prefix(slack, s3_bucket, tmp_path):
    data = os.urandom(5 * 1024 * 1024)
    (tmp_path / "big.bin").write_bytes(data)
    r = send("local", "data-team", attachment={"bucket": str(tmp_path), "key": "big.bin"}, local_roots=[tmp_path])
    assert slack.files[r.file_id]["data"] == data
    open_store(f"{s3_bucket}/pre/fix").put("a/b.txt", b"hello")
    r = send("s3 url", "data-team", attachment={"bucket": f"{s3_bucket}/pre/fix", "key": "a/b.txt"})
    assert slack.files[r.file_id]["data"] == b"hello"


def test_missing_attachment_posts_nothing_and_reports_to_the_error_channel(slack, store_url):
    open_store(store_url).put("other.csv", b"x")
    with pytest.raises(NotFoundError) as e:
        send("<!channel> nightly report", "data-team",
             attachment={"bucket": store_url, "key": "reports/missing.csv"}, local_roots=[store_url])
    assert e.value.details["code"] == "attachment_not_found"
    assert "upload the file" in e.value.hint
    assert slack.messages_in("data-team") == []
    report = _report(slack)
    assert "#data-team" in report and "reports/missing.csv" in report and "attachment_not_found" in report
    assert "upload the file" in report
    # the quoted message must not ping the error channel
    assert "&lt;!channel&gt; nightly report" in report and "<!channel>" not in report


def test_missing_local_folder_and_bad_bucket_names(slack, tmp_path, monkeypatch):
    monkeypatch.setenv("SHIPYARD_JARVIS__ATTACHMENT_ROOTS", f'["{tmp_path}"]')
    r = deliver({"message": "m", "slack_channel": "data-team",
                 "attachment": {"bucket": "./no/such/folder", "key": "a.csv"}}, settings=get_settings(fresh=True))
    assert r["ok"] is False and r["error"] == "attachment_not_found" and "folder" in r["message"]
    r = deliver({"message": "m", "slack_channel": "data-team",
                 "attachment": {"bucket": "Not_A_Bucket", "key": "a.csv"}})
    assert r["error"] == "invalid_payload" and "bucket name" in r["hint"]
    assert len(slack.messages_in(ERRORS)) == 2 and slack.messages_in("data-team") == []


def test_bot_not_in_channel(slack):
    slack.add_channel("marketing", member=False)
    r = deliver({"heading": "Heads up", "message": "hello", "slack_channel": "marketing"})
    assert r["ok"] is False and r["error"] == "not_in_channel" and r["channel"] == "marketing"
    assert "/invite @jarvis" in r["hint"] and r["reported_to"] == "error_channel"
    report = _report(slack)
    assert "#marketing" in report and "not a member" in report and "/invite @jarvis" in report
    assert "Heads up" in report and "hello" in report


def test_channel_not_found_and_private_channel_not_invited(slack):
    slack.add_channel("hidden", private=True, member=False)
    for name in ("no-such-channel", "hidden"):
        with pytest.raises(NotFoundError) as e:
            send("m", name)
        assert e.value.details["code"] == "channel_not_found"
        assert "check the channel name" in e.value.hint
    assert len(slack.messages_in(ERRORS)) == 2


def test_archived_channel(slack):
    slack.add_channel("old-team", archived=True, member=False)
    with pytest.raises(InputError) as e:
        send("m", "old-team")
    assert e.value.details["code"] == "is_archived" and "unarchive" in e.value.hint


def test_bot_removed_after_caching_gets_not_in_channel_from_slack_and_recovers(slack):
    send("first", "data-team")
    slack.set_member("data-team", False)
    with pytest.raises(NotFoundError) as e:
        send("second", "data-team")
    assert e.value.details["code"] == "not_in_channel"
    assert e.value.details["slack_method"] == "chat.postMessage"
    slack.set_member("data-team", True)
    assert send("third", "data-team").ok
    assert [m["text"] for m in slack.messages_in("data-team")] == ["first", "third"]


def test_bot_invited_after_a_failure_is_found_without_restart(slack):
    slack.add_channel("new-team", member=False)
    assert deliver({"message": "m", "slack_channel": "new-team"})["error"] == "not_in_channel"
    slack.set_member("new-team", True)
    assert deliver({"message": "m", "slack_channel": "new-team"})["ok"] is True


def test_rate_limit_is_honoured_with_retry_after(slack):
    slack.fail("chat.postMessage", "ratelimited", status=429, retry_after=1)
    t0 = time.monotonic()
    r = send("after a pause", "data-team")
    assert r.ok and time.monotonic() - t0 >= 1.0
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]


def test_rate_limit_that_does_not_end_is_retryable(slack, monkeypatch):
    monkeypatch.setenv("SHIPYARD_JARVIS__RATE_LIMIT_RETRIES", "1")
    from shipyard.settings import get_settings

    get_settings(fresh=True)
    cid = slack.channel("data-team").id
    slack.fail("chat.postMessage", "ratelimited", status=429, retry_after=1, times=10, channel=cid)
    with pytest.raises(TransientError) as e:
        send("never", "data-team")
    assert e.value.details["code"] == "ratelimited" and e.value.retryable
    assert len(slack.calls_to("chat.postMessage")) == 2 + 1  # 1 try + 1 retry, then the report
    assert "ratelimited" in _report(slack)


def test_server_errors_are_retried_a_bounded_number_of_times(slack):
    cid = slack.channel("data-team").id
    slack.fail("chat.postMessage", status=500, times=2, channel=cid)
    assert send("made it", "data-team").ok
    slack.fail("chat.postMessage", status=503, times=100, channel=cid)
    with pytest.raises(TransientError) as e:
        send("lost?", "data-team")
    assert e.value.details["code"] == "http_503"
    statuses = [c.status for c in slack.calls_to("chat.postMessage") if c.params["channel"] == cid]
    assert statuses == [500, 500, 200, 503, 503, 503]  # 2 retries each time
    assert "lost?" in _report(slack)


def test_invalid_auth_reports_to_the_outbox(slack, tmp_path, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-revoked")
    from shipyard.settings import get_settings

    get_settings(fresh=True)
    r = deliver({"message": "m", "slack_channel": "data-team"})
    assert r["ok"] is False and r["error"] == "invalid_auth" and "SLACK_BOT_TOKEN" in r["hint"]
    assert r["reported_to"] == "outbox"  # the error channel refuses the same token
    (line,) = read_outbox()
    assert line["level"] == "failure" and line["title"] == "could not deliver to #data-team"
    assert line["fields"]["error"] == "invalid_auth" and line["fields"]["payload"]["message"] == "m"
    assert "xoxb-revoked" not in json.dumps(line)


def test_missing_scope_names_the_scope(slack):
    slack.fail("users.conversations", "missing_scope", times=5)
    with pytest.raises(ConfigError) as e:
        send("m", "data-team")
    assert "OAuth & Permissions" in e.value.hint


def test_error_channel_missing_falls_back_to_the_outbox(slack, tmp_path, monkeypatch):
    monkeypatch.setenv("SHIPYARD_JARVIS__ERROR_CHANNEL", "#nobody-made-this")
    from shipyard.settings import get_settings

    get_settings(fresh=True)
    r = deliver({"message": "m", "slack_channel": "nope"})
    assert r["error"] == "channel_not_found" and r["reported_to"] == "outbox"
    (line,) = read_outbox()
    assert line["channel"] == "nobody-made-this" and "nobody-made-this" in line["fields"]["report_error"]


def test_failure_in_the_error_channel_itself_is_not_reported_there(slack, tmp_path):
    slack.set_member(ERRORS, False)
    r = deliver({"message": "m", "slack_channel": ERRORS})
    assert r["reported_to"] == "outbox" and len(read_outbox()) == 1


def test_upload_url_5xx_is_retried_with_a_new_upload_url(slack, tmp_path):
    (tmp_path / "log.txt").write_text("boom")
    slack.fail("upload", status=503, times=2)
    r = send("with log", "data-team", attachment=(str(tmp_path), "log.txt"), local_roots=[tmp_path])
    assert slack.files[r.file_id]["data"] == b"boom" and slack.files[r.file_id]["thread_ts"] == r.ts
    assert [c.status for c in slack.calls_to("upload")] == [503, 503, 200]
    assert len(slack.calls_to("files.getUploadURLExternal")) == 3
    assert len(slack.calls_to("files.completeUploadExternal")) == 1


def test_upload_failure_after_the_message_is_reported_with_its_ts(slack, tmp_path):
    (tmp_path / "log.txt").write_text("boom")
    slack.fail("upload", status=500, times=3)
    with pytest.raises(TransientError) as e:
        send("with log", "data-team", attachment=(str(tmp_path), "log.txt"), local_roots=[tmp_path])
    assert "posted but its attachment was not" in e.value.message
    assert e.value.details["code"] == "http_500" and "HTTP 500 to files_upload_v2" in e.value.message
    (msg,) = slack.messages_in("data-team")
    assert e.value.details["ts"] == msg["ts"]
    assert "log.txt" in _report(slack)


def test_slack_unreachable_is_retryable_and_kept_in_the_outbox(monkeypatch, tmp_path):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-any")
    monkeypatch.setenv("SHIPYARD_SLACK_BASE_URL", f"http://127.0.0.1:{free_port()}/api/")
    monkeypatch.setenv("SHIPYARD_JARVIS__RETRY_BACKOFF", "0.01")
    from shipyard.settings import get_settings

    get_settings(fresh=True)
    r = deliver({"message": "m", "slack_channel": "data-team"})
    assert r["ok"] is False and r["error"] == "slack_unreachable" and r["retryable"] is True
    assert r["reported_to"] == "outbox" and read_outbox()[0]["fields"]["payload"]["message"] == "m"


def test_invalid_payload_is_reported_to_the_error_channel(slack):
    r = deliver({"mesage": "typo", "slack_channel": "data-team"})
    assert r["error"] == "invalid_payload" and "did you mean 'message'" in r["message"]
    report = _report(slack)
    assert "#data-team" in report and "did you mean" in report
    r = deliver("definitely not json")
    assert r["error"] == "invalid_payload" and "(no channel given)" in slack.messages_in(ERRORS)[1]["text"]


def test_without_a_token_send_writes_to_the_outbox(tmp_path):
    r = send("<!here> local run", "data-team", heading="dev", attachment={"bucket": "b-bucket", "key": "k.csv"})
    assert r.ok and r.outbox == str(tmp_path / "outbox.jsonl")
    (line,) = read_outbox()
    assert (line["channel"], line["title"], line["message"]) == ("data-team", "dev", "<!here> local run")
    assert line["attachment"] == {"bucket": "b-bucket", "key": "k.csv"}
    with pytest.raises(InputError):
        send("", "data-team")
