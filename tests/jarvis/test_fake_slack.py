"""The fake Slack server itself: it must refuse what Slack refuses, or the other tests prove nothing."""

import httpx

from tests.fakes.slack import TOKEN


def test_token_is_checked(fake_slack):
    url = fake_slack.base_url + "auth.test"
    assert httpx.post(url).json() == {"ok": False, "error": "not_authed"}
    assert httpx.post(url, headers={"Authorization": "Bearer xoxb-wrong"}).json()["error"] == "invalid_auth"
    assert httpx.post(url, headers={"Authorization": f"Bearer {TOKEN}"}).json()["ok"] is True


def test_upload_url_is_on_the_fake_and_checks_the_length(fake_slack):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    cid = fake_slack.add_channel("c")
    r = httpx.post(fake_slack.base_url + "files.getUploadURLExternal", data={"filename": "a.txt", "length": "3"},
                   headers=auth).json()
    assert r["upload_url"].startswith(fake_slack.root + "/upload/")
    assert httpx.post(r["upload_url"], content=b"toolong").status_code == 400
    done = httpx.post(fake_slack.base_url + "files.completeUploadExternal", headers=auth,
                      data={"files": f'[{{"id": "{r["file_id"]}"}}]', "channel_id": cid}).json()
    assert done == {"ok": False, "error": "file_not_found"}  # nothing was uploaded
    assert httpx.post(r["upload_url"], content=b"abc").status_code == 200
    done = httpx.post(fake_slack.base_url + "files.completeUploadExternal", headers=auth,
                      data={"files": f'[{{"id": "{r["file_id"]}"}}]', "channel_id": cid}).json()
    assert done["ok"] is True and fake_slack.files[r["file_id"]]["data"] == b"abc"


def test_scripted_failures_are_consumed_in_order(fake_slack):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    fake_slack.fail("auth.test", "ratelimited", status=429, retry_after=7)
    r = httpx.post(fake_slack.base_url + "auth.test", headers=auth)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7" and r.json()["error"] == "ratelimited"
    assert httpx.post(fake_slack.base_url + "auth.test", headers=auth).json()["ok"] is True
