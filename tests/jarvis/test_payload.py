"""The payload contract and its rendering (no Slack needed)."""

import json

import pytest

from shipyard.errors import InputError
from shipyard.jarvis.payload import HEADER_MAX, SECTION_MAX, escape, parse_payload, split_mrkdwn


def test_minimal_payload_without_heading_has_no_header_block_and_text_is_set():
    p = parse_payload({"message": "load finished", "slack_channel": "data-team"})
    assert p.heading is None and p.attachment is None
    assert [b["type"] for b in p.blocks()] == ["section"]
    assert p.blocks()[0]["text"] == {"type": "mrkdwn", "text": "load finished"}
    assert p.text() == "load finished"


def test_heading_is_a_header_block_and_part_of_text():
    p = parse_payload({"heading": "ETL", "message": "done", "slack_channel": "data-team"})
    assert p.blocks()[0] == {"type": "header", "text": {"type": "plain_text", "text": "ETL", "emoji": True}}
    assert p.text() == "ETL\ndone"


def test_blog_payload_with_attachment_parses():
    blog = {"heading": "Heading", "message": "Message", "slack_channel": "slice-lambda-notifications",
            "attachment": {"bucket": "slack-notification-framework-attachments", "key": "testing/test_file.csv"}}
    p = parse_payload(json.dumps(blog))
    assert p.attachment.bucket == "slack-notification-framework-attachments"
    assert p.attachment.key == "testing/test_file.csv"


def test_leading_slash_in_key_is_dropped_as_the_blog_writes_keys():
    p = parse_payload({"message": "m", "slack_channel": "c",
                       "attachment": {"bucket": "b-bucket", "key": "/service_name/file.csv"}})
    assert p.attachment.key == "service_name/file.csv"


@pytest.mark.parametrize("mention", ["<!channel>", "<!here>", "<!everyone>", "<@UNKDY50FH>",
                                     "<@U123ABC|alice>", "<!subteam^S0123ABC>", "<#C0123ABCD>"])
def test_mentions_pass_through_and_everything_else_is_escaped(mention):
    p = parse_payload({"message": f"{mention} Failure in deleting file a<b & c>d", "slack_channel": "c"})
    text = p.blocks()[0]["text"]["text"]
    assert text == f"{mention} Failure in deleting file a&lt;b &amp; c&gt;d"
    assert p.text() == text


def test_fake_mentions_and_markup_are_escaped():
    assert escape("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert escape("<!channelx> <@lowercase> <https://evil|x>") == \
        "&lt;!channelx&gt; &lt;@lowercase&gt; &lt;https://evil|x&gt;"
    assert escape("&amp;") == "&amp;amp;"
    assert escape("<!channel>", mentions=False) == "&lt;!channel&gt;"


def test_unicode_is_kept():
    p = parse_payload({"heading": "Résumé ✅", "message": "日本語 — naïve 🚀 <@U1ABC>", "slack_channel": "données"})
    assert p.slack_channel == "données"
    assert p.blocks()[0]["text"]["text"] == "Résumé ✅"
    assert p.blocks()[1]["text"]["text"] == "日本語 — naïve 🚀 <@U1ABC>"


def test_channel_is_normalised_and_ids_are_kept():
    assert parse_payload({"message": "m", "slack_channel": "#Data-Team"}).slack_channel == "data-team"
    assert parse_payload({"message": "m", "slack_channel": "C0123ABCDE"}).slack_channel == "C0123ABCDE"


@pytest.mark.parametrize("payload, expected", [
    ({"slack_channel": "c"}, "'message' is required"),
    ({"message": "m"}, "'slack_channel' is required"),
    ({"message": "   ", "slack_channel": "c"}, "'message' must not be empty"),
    ({"message": "m", "slack_channel": "data team"}, "did you mean 'data-team'?"),
    ({"message": "m", "slack_chanel": "c"}, "unknown field 'slack_chanel'; did you mean 'slack_channel'?"),
    ({"message": 3, "slack_channel": "c"}, "'message'"),
    ({"message": "m", "slack_channel": "c", "attachment": {"bucket": "b"}}, "'attachment.key' is required"),
    ({"message": "m", "slack_channel": "c", "attachment": {"bucket": "b", "key": "../etc/passwd"}},
     "'..' segments are not allowed"),
    ({"message": "m", "slack_channel": "c", "attachment": "file.csv"}, "'attachment'"),
    ({"message": "x" * 40_001, "slack_channel": "c"}, "attach the rest as a file"),
])
def test_bad_payloads_say_what_to_fix(payload, expected):
    with pytest.raises(InputError) as e:
        parse_payload(payload)
    assert expected in e.value.message
    assert e.value.details["code"] == "invalid_payload"
    assert "slack_channel" in e.value.hint


@pytest.mark.parametrize("raw, expected", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object, not list"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_payload_that_is_not_an_object(raw, expected):
    with pytest.raises(InputError) as e:
        parse_payload(raw)
    assert expected in e.value.message


def test_long_message_splits_into_sections_at_line_ends_without_cutting_tokens():
    line = "row & <@U0AB12CD> ok\n"
    message = line * 400  # ~10k characters after escaping
    p = parse_payload({"message": message, "slack_channel": "c"})
    sections = [b["text"]["text"] for b in p.blocks()]
    assert len(sections) > 1 and all(len(s) <= SECTION_MAX for s in sections)
    assert "\n".join(sections) == escape(message.rstrip("\n"))
    for s in sections:
        assert s.count("<@") == s.count(">")  # no token cut in two


def test_split_never_cuts_an_entity_or_mention_without_newlines():
    text = escape("a&b<@U0AB12CD>" * 500)
    pieces = split_mrkdwn(text, 100)
    assert "".join(pieces) == text
    for piece in pieces:
        assert len(piece) <= 100
        assert not piece.endswith(("&", "&a", "&am", "&amp", "<", "<@"))


def test_long_heading_is_truncated_in_the_block_but_whole_in_text():
    heading = "<&>" * 100
    p = parse_payload({"heading": heading, "message": "m", "slack_channel": "c"})
    block = p.blocks()[0]["text"]["text"]
    assert len(block) <= HEADER_MAX and block.endswith("…")
    assert block[:-1] == escape(heading)[: len(block) - 1]
    assert p.text().startswith(escape(heading))


def test_nesting_depth_is_measured_in_linear_time_and_skips_strings():
    import time

    from shipyard.jarvis.payload import _too_deep

    assert _too_deep("[" * 40, 32) and not _too_deep("[" * 32 + "]" * 32, 32)
    assert not _too_deep('{"m": "' + "[" * 100 + '"}', 32)  # brackets inside a string
    assert not _too_deep('{"m": "\\"' + "[" * 100 + '"}', 32)  # an escaped quote keeps the string open
    assert _too_deep('{"m": "\\\\", "x": ' + "[" * 40 + "]" * 40 + "}", 32)  # an escaped backslash closes it
    hostile = ("[" * 10 + "]" * 10) * 4 + '"\\' * 500_000  # no closing quote: a backtracking scanner is quadratic
    t0 = time.perf_counter()
    assert not _too_deep(hostile, 32)
    assert time.perf_counter() - t0 < 2
