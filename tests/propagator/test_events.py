"""Parsing AWS event shapes into object events, and routing them; no services needed.

Fixtures in tests/propagator/events/ follow AWS's documented shapes (see events/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.errors import InputError
from shipyard.propagator.dispatch import message_done, route_event
from shipyard.propagator.events import (
    ObjectEvent,
    decode_key,
    message_from_sqs,
    parse_lambda_event,
    parse_notification,
)
from shipyard.propagator.layout import own_folder

EVENTS = Path(__file__).parent / "events"
TABLE = "destination=duckdb/database=analytics/table_name=users"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_fixtures_are_all_used_and_valid_json():
    names = {p.name for p in EVENTS.glob("*.json")}
    tests = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    assert names == {n for n in names if n in tests}, "every fixture is exercised by a test"


@pytest.mark.parametrize("raw, key", [
    ("my+file.csv", "my file.csv"),
    ("my%20file.csv", "my file.csv"),
    ("destination%3Dduckdb/a%2Bb.csv", "destination=duckdb/a+b.csv"),
    ("caf%C3%A9+%281%29.csv", "café (1).csv"),
    ("plain/key.csv", "plain/key.csv"),
])
def test_decode_key(raw, key):
    assert decode_key(raw) == key


def test_direct_s3_put_decodes_plus_and_equals():
    inv = parse_lambda_event(load("s3_put.json"))
    assert inv.kind == "s3"
    [msg] = inv.messages
    [ev] = msg.events
    assert ev == ObjectEvent(
        bucket="amzn-s3-demo-bucket", key=f"{TABLE}/input/load/new users 2026.csv",
        event_name="ObjectCreated:Put", source="s3", etag="0123456789abcdef0123456789abcdef",
        size=1024, sequencer="0A1B2C3D4E5F678901", version_id=None)
    assert ev.created


def test_two_records_keep_order_and_decode_percent20():
    [msg] = parse_lambda_event(load("s3_put_two_records.json")).messages
    assert [e.key for e in msg.events] == [
        f"{TABLE}/schema/create/users table.json",
        f"{TABLE}/input/load/more users.csv",
    ]


def test_s3_test_event_has_no_records():
    inv = parse_lambda_event(load("s3_test_event.json"))
    assert inv.kind == "test"
    assert inv.messages[0].events == [] and inv.messages[0].note == "s3:TestEvent"


def test_sqs_batch_one_message_per_record():
    inv = parse_lambda_event(load("sqs_s3_batch.json"))
    assert inv.kind == "sqs"
    assert [m.message_id for m in inv.messages] == [
        "059f36b4-87a3-44ab-83d2-661975830a7d",
        "2e1424d4-f796-459a-8184-9c92662be6da",
        "8c9a7f3e-2b1d-4c5e-9f0a-1b2c3d4e5f60",
    ]
    assert [m.receive_count for m in inv.messages] == [1, 1, 2]
    assert [m.events[0].key.rsplit("/", 1)[1] for m in inv.messages] == [
        "good rows.csv", "bad rows.csv", "late rows.csv"]
    assert inv.messages[2].events[0].key.startswith("destination=unreachable/")
    assert all(m.error is None for m in inv.messages)


def test_sqs_wrapping_sns_wrapping_s3():
    [msg] = parse_lambda_event(load("sqs_sns_s3.json")).messages
    assert msg.message_id == "d2d5c0e4-4a8e-4b0b-9a83-5b3e3d7c1f11"
    assert [e.key for e in msg.events] == [f"{TABLE}/input/update/users fix.csv"]
    assert msg.events[0].source == "s3"


def test_sns_to_lambda():
    inv = parse_lambda_event(load("sns_s3.json"))
    assert inv.kind == "sns"
    assert [e.key for e in inv.messages[0].events] == [f"{TABLE}/input/load/new users 2026.csv"]


def test_sqs_wrapping_s3_test_event():
    [msg] = parse_lambda_event(load("sqs_s3_test_event.json")).messages
    assert msg.events == [] and msg.note == "s3:TestEvent" and msg.error is None
    assert message_done(msg, [])


def test_eventbridge_object_created():
    inv = parse_lambda_event(load("eventbridge_object_created.json"))
    assert inv.kind == "eventbridge"
    [ev] = inv.messages[0].events
    assert ev.key == f"{TABLE}/input/load/new users 2026.csv"
    assert ev.bucket == "amzn-s3-demo-bucket" and ev.source == "eventbridge"
    assert ev.event_name == "Object Created" and ev.created
    assert ev.etag == "b1946ac92492d2347c6235b4d2611184" and ev.size == 5
    assert ev.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e" and ev.sequencer == "617f08299329d189"


def test_eventbridge_inside_sqs():
    [msg] = parse_lambda_event(load("sqs_eventbridge.json")).messages
    assert msg.events[0].source == "eventbridge"
    assert msg.events[0].key == f"{TABLE}/input/load/new users 2026.csv"


def test_unreadable_sqs_body_is_a_message_error_not_an_exception():
    [msg] = parse_lambda_event(load("sqs_not_json.json")).messages
    assert isinstance(msg.error, InputError)
    assert "not JSON" in msg.error.message and msg.error.hint
    assert not message_done(msg, [])  # kept: it goes to the DLQ after maxReceiveCount


def test_receive_message_shape_is_accepted_too():
    # What boto3's sqs.receive_message returns (capitalised), as `watch --queue` sees it.
    body = json.dumps(load("s3_put.json"))
    msg = message_from_sqs({"MessageId": "m-1", "ReceiptHandle": "rh", "Body": body,
                            "Attributes": {"ApproximateReceiveCount": "3"}})
    assert msg.message_id == "m-1" and msg.receipt_handle == "rh" and msg.receive_count == 3
    assert msg.events[0].key.endswith("new users 2026.csv")


@pytest.mark.parametrize("event", [
    [],
    "text",
    {"Records": [{"eventSource": "aws:dynamodb"}]},
    {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {}}}]},
    {"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {"name": "b"}}},
    {"hello": "world"},
])
def test_unknown_direct_events_raise_input_error(event):
    with pytest.raises(InputError) as err:
        parse_lambda_event(event)
    assert err.value.message


def test_notification_as_json_text():
    events, note = parse_notification(json.dumps(load("eventbridge_object_created.json")))
    assert note is None and len(events) == 1


# ------------------------------------------------------------------ routing

def ev(key: str, name: str = "ObjectCreated:Put", bucket: str = "bkt") -> ObjectEvent:
    return ObjectEvent(bucket=bucket, key=key, event_name=name, source="s3")


def test_route_plain_bucket():
    route, reason = route_event(ev(f"{TABLE}/input/load/a b.csv"))
    assert reason is None
    assert route.store_url == "s3://bkt" and route.key == f"{TABLE}/input/load/a b.csv"


def test_route_with_prefix_maps_to_store_under_prefix():
    route, reason = route_event(ev(f"landing/zone/{TABLE}/input/load/a.csv"), prefix="/landing/zone/")
    assert reason is None
    assert route.store_url == "s3://bkt/landing/zone"
    assert route.key == f"{TABLE}/input/load/a.csv"


def test_route_outside_prefix_is_ignored():
    route, reason = route_event(ev(f"elsewhere/{TABLE}/input/load/a.csv"), prefix="landing")
    assert route is None and "outside the configured prefix" in reason
    # "landingX/..." is not under "landing/"
    route, reason = route_event(ev(f"landingX/{TABLE}/input/load/a.csv"), prefix="landing")
    assert route is None


@pytest.mark.parametrize("folder", ["succeeded", "failed"])
def test_own_folders_are_ignored(folder):
    key = f"{TABLE}/{folder}/a.csv"
    assert own_folder(key) == folder
    route, reason = route_event(ev(key, "ObjectCreated:Copy"))
    assert route is None and f"under {folder}/" in reason
    # the error report beside a failed file too
    route, _ = route_event(ev(f"{TABLE}/failed/a.csv.error.json"))
    assert route is None


def test_only_the_folder_after_the_table_counts():
    # a file *named* failed, or a folder called failed elsewhere, is not the propagator's
    assert own_folder(f"{TABLE}/input/load/failed") is None
    assert own_folder("failed/x.csv") is None
    assert route_event(ev(f"{TABLE}/input/load/failed"))[0] is not None


def test_removed_events_are_ignored():
    [msg] = parse_lambda_event(load("s3_delete.json")).messages
    route, reason = route_event(msg.events[0])
    assert route is None and "ObjectRemoved:Delete is not an object-created event" == reason


def test_copy_into_succeeded_fixture_is_ignored():
    [msg] = parse_lambda_event(load("s3_copy_succeeded.json")).messages
    route, reason = route_event(msg.events[0])
    assert route is None and "succeeded/" in reason


def test_table_of():
    from shipyard.propagator.layout import table_of

    assert table_of(f"{TABLE}/input/load/a.csv") == TABLE
    assert table_of("Destination=x/database=y/table_name=Z/input/load/a.csv") is None
    assert table_of("destination=X/database=y/table_name=Z/input/load/a.csv") == \
        "destination=x/database=y/table_name=z"
    assert table_of("other/x.csv") is None
