"""The Lambda handler and the SQS consumer, against moto's S3/SQS server on loopback and the real
propagator into DuckDB and PostgreSQL; plus the SAM template's invariants.

Event JSON comes from tests/propagator/events/ (AWS's documented shapes) with the bucket name
substituted, or is produced by moto itself (S3 -> SQS bucket notifications).
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import yaml

from shipyard.propagator import aws

REPO = Path(__file__).resolve().parents[2]
EVENTS = Path(__file__).parent / "events"
TEMPLATE = REPO / "deploy" / "template.yaml"


def event_text(name: str, bucket: str = "amzn-s3-demo-bucket", **replace: str) -> dict:
    """A fixture with the bucket (and any other literal text) substituted, bodies included."""
    text = (EVENTS / name).read_text().replace("amzn-s3-demo-bucket", bucket)
    for old, new in replace.items():
        text = text.replace(old, new)
    return json.loads(text)


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


# ------------------------------------------------------------------ events that are not ours

def test_s3_test_event_is_ignored(capsys):
    assert aws.handler(event_text("s3_test_event.json"), None) == {"records": []}


def test_sqs_test_event_is_acknowledged(capsys):
    assert aws.handler(event_text("sqs_s3_test_event.json"), None) == {"batchItemFailures": []}


@pytest.mark.parametrize("name, reason", [
    ("s3_copy_succeeded.json", "under succeeded/ (written by the propagator itself)"),
    ("s3_delete.json", "ObjectRemoved:Delete is not an object-created event"),
])
def test_own_moves_and_deletes_are_ignored_without_touching_anything(name, reason, capsys):
    # The bucket does not even exist: an ignored event must not open the store or a warehouse.
    out = aws.handler(event_text(name, bucket="no-such-bucket"), None)
    [record] = out["records"]
    assert record["status"] == "ignored" and record["reason"] == reason
    [line] = json_lines(capsys.readouterr().out)
    assert line["status"] == "ignored" and line["key"].endswith("new users 2026.csv")


def test_unknown_event_shape_raises_input_error():
    from shipyard.errors import InputError

    with pytest.raises(InputError):
        aws.handler({"hello": "world"}, None)


def test_unreadable_sqs_message_is_reported_for_the_dlq(capsys):
    event = event_text("sqs_not_json.json")
    assert aws.handler(event, None) == {
        "batchItemFailures": [{"itemIdentifier": "0b6f5e4d-3c2b-4a19-8877-665544332211"}]}
    [line] = json_lines(capsys.readouterr().out)
    assert line["status"] == "unreadable" and "not JSON" in line["error"]


def test_events_of_another_bucket_are_ignored(monkeypatch):
    monkeypatch.setenv("SHIPYARD_PROPAGATOR__BUCKET", "acme-data-drop")
    from shipyard.settings import get_settings

    get_settings(fresh=True)
    out = aws.handler(event_text("s3_put.json", bucket="someone-elses"), None)
    assert out["records"][0]["status"] == "ignored"
    assert out["records"][0]["reason"] == "bucket 'someone-elses' is not the one served ('acme-data-drop')"


def test_outside_the_configured_prefix_is_ignored(monkeypatch, capsys):
    monkeypatch.setenv("SHIPYARD_PROPAGATOR__PREFIX", "landing/")
    from shipyard.settings import get_settings

    get_settings(fresh=True)
    out = aws.handler(event_text("s3_put.json", bucket="no-such-bucket"), None)
    assert out["records"][0]["status"] == "ignored"
    assert "outside the configured prefix 'landing'" in out["records"][0]["reason"]


# ------------------------------------------------------------------ the SAM template

class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !If ...) as plain dicts."""


def _cfn_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)


def _if_value(node):
    """The 'true' branch of an Fn::If."""
    return node["Fn::If"][1]


def test_template_handler_is_importable(template):
    fn = template["Resources"]["PropagatorFunction"]["Properties"]
    [command] = fn["ImageConfig"]["Command"]
    module, _, name = command.rpartition(".")
    assert getattr(importlib.import_module(module), name) is aws.handler
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    assert f'CMD ["{command}"]' in dockerfile


def test_template_notifications_filter_on_destination_prefix(template):
    notif = template["Resources"]["DropBucket"]["Properties"]["NotificationConfiguration"]
    for kind in ("QueueConfigurations", "LambdaConfigurations"):
        [config] = _if_value(notif[kind])
        assert config["Event"] == "s3:ObjectCreated:*"
        assert config["Filter"]["S3Key"]["Rules"] == [
            {"Name": "prefix", "Value": {"Fn::Sub": "${LayoutPrefix}destination="}}]
    rule = template["Resources"]["ObjectCreatedRule"]["Properties"]["EventPattern"]
    assert rule["detail-type"] == ["Object Created"]
    prefixes = [p["prefix"]["Fn::Sub"] for p in rule["detail"]["object"]["key"]]
    assert prefixes == ["${LayoutPrefix}destination=", "${LayoutPrefix}destination%3D"]


def test_template_queue_reports_batch_item_failures_and_dead_letters(template):
    res = template["Resources"]
    esm = res["QueueEventSource"]["Properties"]
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["BatchSize"] <= 10
    queue = res["EventQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": "DeadLetterQueue.Arn"}
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 3
    params = template["Parameters"]
    # https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html: >= 6 x timeout
    assert params["QueueVisibilityTimeout"]["Default"] >= 6 * params["FunctionTimeout"]["Default"]
    assert params["FunctionTimeout"]["MaxValue"] <= 900  # Lambda's limit


def test_template_policy_and_environment(template):
    fn = template["Resources"]["PropagatorFunction"]["Properties"]
    statements = {s["Sid"]: s for s in
                  (_if_value(s) if "Fn::If" in s else s for s in fn["Policies"][1]["Statement"])}
    assert sorted(statements["LayoutObjects"]["Action"]) == [
        "s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert statements["LayoutObjects"]["Resource"]["Fn::Sub"].endswith("/${LayoutPrefix}*")
    # HeadObject of a moved file must say 404 (redelivery no-op), which needs ListBucket.
    assert statements["LayoutListing"]["Action"] == "s3:ListBucket"
    assert "sqs:DeleteMessage" in statements["ConsumeEvents"]["Action"]
    assert statements["WarehouseSecret"]["Action"] == "secretsmanager:GetSecretValue"
    env = fn["Environment"]["Variables"]
    assert env["SHIPYARD_PROPAGATOR__PREFIX"] == {"Ref": "LayoutPrefix"}
    assert env["SHIPYARD_PROPAGATOR__BUCKET"] == {"Ref": "BucketName"}
    assert env["SHIPYARD_OUTBOX"].startswith("/tmp/")  # the only writable path in Lambda
    assert re.match(r"^\^\$\|", template["Parameters"]["LayoutPrefix"]["AllowedPattern"])


def test_local_runner_prints_the_response(capsys):
    assert aws.main([str(EVENTS / "s3_test_event.json")]) == 0
    assert json.loads(capsys.readouterr().out) == {"records": []}
    assert aws.main([str(EVENTS / "sqs_not_json.json")]) == 0
    out = capsys.readouterr().out
    assert '"batchItemFailures"' in out and "0b6f5e4d-3c2b-4a19-8877-665544332211" in out


# ------------------------------------------------------------------ the real propagator

SPEC = json.dumps({"column_specification": {"id": "INTEGER", "name": "VARCHAR"},
                   "primary_key": ["id"]}).encode()
TABLE = "destination=duckdb/database=analytics/table_name=users"
ENC_TABLE = "destination%3Dduckdb/database%3Danalytics/table_name%3Dusers"


@pytest.fixture(autouse=True)
def _fresh_handler_state():
    aws.reset()
    yield
    aws.reset()


@pytest.fixture
def bucket(s3_bucket):
    """(name, boto3 client) of a fresh moto bucket."""
    import boto3

    return s3_bucket.removeprefix("s3://"), boto3.client("s3")


def put(bucket, key: str, body: bytes) -> None:
    name, s3 = bucket
    s3.put_object(Bucket=name, Key=key, Body=body)


def keys(bucket) -> set[str]:
    name, s3 = bucket
    return {o["Key"] for o in s3.list_objects_v2(Bucket=name).get("Contents", [])}


def duck_rows(tmp_path, sql="SELECT id, name FROM analytics.users ORDER BY id"):
    import duckdb

    aws.reset()  # the handler's cached engine holds the warehouse open
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        return con.execute(sql).fetchall()


def direct(name: str, bucket_name: str, key_from: str, key_to: str) -> dict:
    """A direct S3 event fixture retargeted at another (encoded) key."""
    return event_text(name, bucket=bucket_name, **{key_from: key_to})


def create_users_table(bucket, table=TABLE, enc_table=ENC_TABLE):
    put(bucket, f"{table}/schema/create/users.json", SPEC)
    event = direct("s3_put.json", bucket[0], f"{ENC_TABLE}/input/load/new+users+2026.csv",
                   f"{enc_table}/schema/create/users.json")
    assert aws.handler(event, None)["records"][0]["status"] == "succeeded"


def test_direct_s3_events_with_encoded_keys_load_duckdb(bucket, tmp_path, capsys):
    name, _ = bucket
    put(bucket, f"{TABLE}/schema/create/users table.json", SPEC)
    put(bucket, f"{TABLE}/input/load/more users.csv", b"id,name\n1,ann\n2,bob\n")
    put(bucket, f"{TABLE}/input/load/new users 2026.csv", b"name,id\ncy,3\n")

    # '+' and '%20' spaces, '%3D' equals; the create spec first, then the %20 file
    out = aws.handler(event_text("s3_put_two_records.json", bucket=name), None)
    assert [(r["key"].rsplit("/", 1)[1], r["status"]) for r in out["records"]] == [
        ("users table.json", "succeeded"), ("more users.csv", "succeeded")]
    assert out["records"][1]["rows"] == 2
    out = aws.handler(event_text("s3_put.json", bucket=name), None)
    assert out["records"][0]["status"] == "succeeded" and out["records"][0]["rows"] == 1

    assert duck_rows(tmp_path) == [(1, "ann"), (2, "bob"), (3, "cy")]
    assert {f"{TABLE}/succeeded/more users.csv", f"{TABLE}/succeeded/new users 2026.csv",
            f"{TABLE}/succeeded/users table.json"} <= keys(bucket)
    assert not any("/input/" in k or "/schema/" in k for k in keys(bucket))

    # one JSON line per record: key, status, seconds
    lines = json_lines(capsys.readouterr().out)
    assert [(line["key"].rsplit("/", 1)[1], line["status"]) for line in lines] == [
        ("users table.json", "succeeded"), ("more users.csv", "succeeded"),
        ("new users 2026.csv", "succeeded")]
    assert all(isinstance(line["seconds"], float) and line["bucket"] == name for line in lines)

    # the same event again (S3 delivers at least once): a no-op
    out = aws.handler(event_text("s3_put.json", bucket=name), None)
    assert out["records"][0]["status"] == "duplicate"
    # and the event of the propagator's own move to succeeded/
    out = aws.handler(event_text("s3_copy_succeeded.json", bucket=name), None)
    assert out["records"][0]["status"] == "ignored"
    assert duck_rows(tmp_path) == [(1, "ann"), (2, "bob"), (3, "cy")]


def test_sqs_batch_reports_only_the_transient_failure(bucket, tmp_path, monkeypatch, capsys):
    from tests.helpers import free_port

    name, s3 = bucket
    # destination=unreachable: a PostgreSQL URL on a closed loopback port (connection refused)
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__UNREACHABLE__TYPE", "postgres")
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__UNREACHABLE__URL",
                       f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    from shipyard.settings import get_settings

    get_settings(fresh=True)
    create_users_table(bucket)
    put(bucket, f"{TABLE}/input/load/good rows.csv", b"id,name\n1,ann\n2,bob\n")
    put(bucket, f"{TABLE}/input/load/bad rows.csv", b"id,name\n3,cy\nnot-a-number,dee\n")
    late = "destination=unreachable/database=analytics/table_name=users/input/load/late rows.csv"
    put(bucket, late, b"id,name\n9,zed\n")

    out = aws.handler(event_text("sqs_s3_batch.json", bucket=name), None)
    # only the transient one is retried; the bad file is terminal (already in failed/)
    assert out == {"batchItemFailures": [{"itemIdentifier": "8c9a7f3e-2b1d-4c5e-9f0a-1b2c3d4e5f60"}]}
    now = keys(bucket)
    assert f"{TABLE}/succeeded/good rows.csv" in now
    assert {f"{TABLE}/failed/bad rows.csv", f"{TABLE}/failed/bad rows.csv.error.json"} <= now
    assert late in now  # left in place for the retry
    report = json.loads(s3.get_object(Bucket=name, Key=f"{TABLE}/failed/bad rows.csv.error.json")["Body"].read())
    assert report["what"] and report["how_to_fix"]
    assert duck_rows(tmp_path) == [(1, "ann"), (2, "bob")]  # nothing of the bad file

    lines = {line["key"].rsplit("/", 1)[1]: line for line in json_lines(capsys.readouterr().out)}
    assert lines["good rows.csv"]["status"] == "succeeded"
    # "bad rows.csv" sorts before "good rows.csv": the good file's event applied it first (a
    # table's files go in key order, whatever order events come in), so its own event finds it
    # already in failed/, and nothing asks for a retry.
    assert lines["bad rows.csv"]["status"] == "duplicate" and "retry" not in lines["bad rows.csv"]
    assert lines["bad rows.csv"]["moved_to"] == f"{TABLE}/failed/bad rows.csv"
    assert lines["late rows.csv"]["status"] == "transient" and lines["late rows.csv"]["retry"] is True
    assert lines["late rows.csv"]["receive_count"] == 2


def test_direct_invocation_raises_only_for_transient_failures(bucket, monkeypatch, pg_database):
    from shipyard.errors import TransientError
    from shipyard.settings import get_settings
    from tests.helpers import free_port

    name, _ = bucket
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__POSTGRES__URL",
                       f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    get_settings(fresh=True)
    table = f"destination=postgres/database={pg_database}/table_name=users"
    put(bucket, f"{table}/schema/create/users.json", SPEC)
    event = direct("s3_put.json", name, f"{ENC_TABLE}/input/load/new+users+2026.csv",
                   f"destination%3Dpostgres/database%3D{pg_database}/table_name%3Dusers/schema/create/users.json")
    with pytest.raises(TransientError) as err:
        aws.handler(event, None)  # Lambda's async retry runs it again
    assert err.value.details["keys"] == [f"{table}/schema/create/users.json"]
    assert f"{table}/schema/create/users.json" in keys(bucket)

    # the warehouse is back: the retried event succeeds
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__POSTGRES__URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    get_settings(fresh=True)
    assert aws.handler(event, None)["records"][0]["status"] == "succeeded"


def test_sns_in_sqs_upserts_into_postgres_with_secret_from_secrets_manager(
        bucket, monkeypatch, pg_database, s3_server):
    import boto3
    import psycopg

    name, _ = bucket
    secret_name = f"propagator-{pg_database}"
    boto3.client("secretsmanager").create_secret(Name=secret_name, SecretString=json.dumps(
        {"SHIPYARD_DESTINATIONS__POSTGRES__URL": "postgresql://postgres@127.0.0.1:5432/postgres"}))
    monkeypatch.setenv("SHIPYARD_LAMBDA_SECRET", secret_name)
    # load_secret_env sets the variable; make monkeypatch remove it afterwards
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__POSTGRES__URL", "")
    monkeypatch.delenv("SHIPYARD_DESTINATIONS__POSTGRES__URL")

    table = f"destination=postgres/database={pg_database}/table_name=users"
    enc = f"destination%3Dpostgres/database%3D{pg_database}/table_name%3Dusers"
    create_users_table(bucket, table, enc)
    put(bucket, f"{table}/input/update/users fix.csv", b"id,name\n1,ann\n2,bob\n1,anne\n")
    event = event_text("sqs_sns_s3.json", bucket=name, **{ENC_TABLE: enc})
    assert aws.handler(event, None) == {"batchItemFailures": []}
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{pg_database}") as conn:
        assert conn.execute("SELECT id, name FROM users ORDER BY id").fetchall() == [(1, "anne"), (2, "bob")]
    assert f"{table}/succeeded/users fix.csv" in keys(bucket)


def test_eventbridge_direct_then_redelivered_through_sqs(bucket, tmp_path):
    name, _ = bucket
    create_users_table(bucket)
    put(bucket, f"{TABLE}/input/load/new users 2026.csv", b"id,name\n7,eve\n")
    out = aws.handler(event_text("eventbridge_object_created.json", bucket=name), None)
    assert out["records"][0]["status"] == "succeeded" and out["records"][0]["source"] == "eventbridge"
    # the same object's event again, via an EventBridge rule targeting SQS: a no-op, acknowledged
    assert aws.handler(event_text("sqs_eventbridge.json", bucket=name), None) == {"batchItemFailures": []}
    assert duck_rows(tmp_path) == [(7, "eve")]


def test_sns_direct_with_a_layout_prefix(bucket, tmp_path, monkeypatch):
    from shipyard.settings import get_settings

    monkeypatch.setenv("SHIPYARD_PROPAGATOR__PREFIX", "landing/zone/")
    get_settings(fresh=True)
    name, _ = bucket
    put(bucket, f"landing/zone/{TABLE}/schema/create/users.json", SPEC)
    put(bucket, f"landing/zone/{TABLE}/input/load/new users 2026.csv", b"id,name\n5,fay\n")
    create = direct("s3_put.json", name, f"{ENC_TABLE}/input/load/new+users+2026.csv",
                    f"landing%2Fzone%2F{ENC_TABLE}/schema/create/users.json")
    assert aws.handler(create, None)["records"][0]["status"] == "succeeded"
    event = event_text("sns_s3.json", bucket=name, **{ENC_TABLE: f"landing%2Fzone%2F{ENC_TABLE}"})
    assert aws.handler(event, None)["records"][0]["status"] == "succeeded"
    assert f"landing/zone/{TABLE}/succeeded/new users 2026.csv" in keys(bucket)
    assert duck_rows(tmp_path) == [(5, "fay")]


def test_sqs_batch_stops_starting_messages_near_the_timeout(bucket):
    class AlmostOutOfTime:  # Lambda's context object, as far as the handler reads it
        def get_remaining_time_in_millis(self):
            return 5_000

    name, _ = bucket
    put(bucket, f"{TABLE}/input/load/good rows.csv", b"id,name\n1,ann\n")
    out = aws.handler(event_text("sqs_s3_batch.json", bucket=name), AlmostOutOfTime())
    assert len(out["batchItemFailures"]) == 3
    assert f"{TABLE}/input/load/good rows.csv" in keys(bucket)  # not started


# ------------------------------------------------------------------ watch --queue

@pytest.fixture
def queue(bucket, s3_server):
    """An SQS queue on moto that receives the bucket's ObjectCreated events under destination=."""
    import boto3

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"q-{bucket[0]}", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bucket[1].put_bucket_notification_configuration(Bucket=bucket[0], NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": {
            "Key": {"FilterRules": [{"Name": "prefix", "Value": "destination="}]}}}]})
    return url, sqs


def test_consume_queue_of_real_s3_notifications(bucket, queue, tmp_path, monkeypatch):
    import time

    from shipyard.propagator.dispatch import PropagatorCache
    from shipyard.propagator.sqs import consume_queue
    from shipyard.settings import get_settings
    from tests.helpers import free_port

    url, sqs = queue
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__LATER__TYPE", "duckdb")
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__LATER__URL", str(tmp_path / "later.duckdb"))
    settings = get_settings(fresh=True)

    later_table = "destination=later/database=analytics/table_name=users"
    put(bucket, f"{TABLE}/schema/create/users.json", SPEC)
    put(bucket, f"{later_table}/schema/create/users.json", SPEC)
    cache = PropagatorCache(settings)
    stats = consume_queue(url, cache, wait_seconds=1, drain=True)
    # s3:TestEvent + the creates; then the moves' own ObjectCreated:Copy, ignored
    assert [r.status for r in stats.results if r.status != "ignored"] == ["succeeded", "succeeded"]

    put(bucket, f"{TABLE}/input/load/a b+c.csv", b"id,name\n1,ann\n")
    put(bucket, f"{TABLE}/input/load/bad.csv", b"id,name\nx,y\n")
    put(bucket, "not-the-layout/x.csv", b"id\n1\n")  # filtered out by the notification
    # a destination whose warehouse is unreachable for now
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__LATER__TYPE", "postgres")
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__LATER__URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    cache.close()
    cache = PropagatorCache(get_settings(fresh=True))
    later = f"{later_table}/input/load/late.csv"
    put(bucket, later, b"id,name\n9,zed\n")

    stats = consume_queue(url, cache, wait_seconds=1, drain=True)
    # A slow machine may see a message again within this call once its visibility timeout
    # passes (at-least-once delivery): repeats are duplicates or the same transient failure.
    seen: dict[str, list[str]] = {}
    for r in stats.results:
        if r.status != "ignored":
            seen.setdefault(r.key.rsplit("/", 1)[1], []).append(r.status)
    assert seen["a b+c.csv"][0] == "succeeded"  # '+' in a real key survives the encoding
    assert seen["bad.csv"][0] == "failed"
    assert set(seen["a b+c.csv"][1:] + seen["bad.csv"][1:]) <= {"duplicate"}
    assert set(seen["late.csv"]) == {"transient"} and stats.kept == len(seen["late.csv"])
    assert later in keys(bucket)

    # the kept message comes back after its visibility timeout (2 s); the warehouse is back too
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__LATER__TYPE", "duckdb")
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__LATER__URL", str(tmp_path / "later.duckdb"))
    cache.close()
    cache = PropagatorCache(get_settings(fresh=True))
    deadline = time.monotonic() + 20
    done: dict[str, str] = {}
    while time.monotonic() < deadline and done.get("late.csv") != "succeeded":
        stats = consume_queue(url, cache, wait_seconds=1, drain=True)
        done.update({r.key.rsplit("/", 1)[1]: r.status for r in stats.results if r.status != "ignored"})
    cache.close()
    assert done.get("late.csv") == "succeeded", done
    assert [r.receive_count for r in stats.results if r.key.endswith("late.csv")][0] >= 2
    # everything acknowledged: nothing left in the queue
    time.sleep(2.1)
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages") is None
    assert duck_rows(tmp_path) == [(1, "ann")]


def test_consume_queue_missing_queue_is_a_config_error(s3_server):
    from shipyard.errors import ConfigError
    from shipyard.propagator.dispatch import PropagatorCache
    from shipyard.propagator.sqs import consume_queue

    with pytest.raises(ConfigError) as err:
        consume_queue(f"{s3_server}/123456789012/no-such-queue", PropagatorCache(), wait_seconds=0, drain=True)
    assert "does not exist" in err.value.message and err.value.hint


def test_watch_queue_entry_point_serves_only_its_bucket_and_prefix(bucket, queue, tmp_path, s3_bucket):
    """What `shipyard propagator watch --bucket s3://... --queue URL` calls (aws.consume_queue)."""
    from shipyard.errors import ConfigError

    url, sqs = queue
    name, _ = bucket
    put(bucket, f"{TABLE}/schema/create/users.json", SPEC)
    # an event of another bucket (as a shared queue could carry) is ignored, and acknowledged
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event_text("s3_put.json", bucket="someone-else")))
    stats = aws.consume_queue(queue_url=url, bucket=f"s3://{name}", drain=True, wait_seconds=1)
    statuses = sorted((r.status, r.reason or "") for r in stats.results)
    assert ("succeeded", "") in statuses
    assert ("ignored", "bucket 'someone-else' is not the one served ('%s')" % name) in statuses
    assert stats.kept == 0
    assert f"{TABLE}/succeeded/users.json" in keys(bucket)

    with pytest.raises(ConfigError) as err:
        aws.consume_queue(queue_url=url, bucket=str(tmp_path / "folder"), drain=True)
    assert "needs an S3 bucket" in err.value.message


def test_cli_watch_queue_runs_until_sigterm(bucket, queue, tmp_path):
    """`shipyard propagator watch --bucket s3://... --queue URL` in a real process."""
    import os
    import signal
    import subprocess
    import sys
    import time

    url, _ = queue
    name, _ = bucket
    env = {**os.environ, "SHIPYARD_PROPAGATOR__QUEUE_WAIT_SECONDS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli", "propagator", "watch", "--bucket", f"s3://{name}",
         "--queue", url], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        put(bucket, f"{TABLE}/schema/create/users.json", SPEC)
        put(bucket, f"{TABLE}/input/load/a b.csv", b"id,name\n1,ann\n")
        deadline = time.monotonic() + 30
        want = {f"{TABLE}/succeeded/users.json", f"{TABLE}/succeeded/a b.csv"}
        while time.monotonic() < deadline and not want <= keys(bucket):
            time.sleep(0.2)
            assert proc.poll() is None, proc.communicate()[0]
        assert want <= keys(bucket)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert duck_rows(tmp_path) == [(1, "ann")]


def test_local_runner_with_key_and_bucket(bucket, tmp_path, capsys, monkeypatch):
    from shipyard.settings import get_settings
    from tests.helpers import free_port

    name, _ = bucket
    put(bucket, f"{TABLE}/schema/create/users.json", SPEC)
    put(bucket, f"{TABLE}/input/load/my file+1.csv", b"id,name\n4,dan\n")
    for key in (f"{TABLE}/schema/create/users.json", f"{TABLE}/input/load/my file+1.csv"):
        assert aws.main([str(EVENTS / "s3_put.json"), "--bucket", name, "--key", key]) == 0
    out = capsys.readouterr().out
    assert out.count('"status": "succeeded"') == 4  # a log line and the response, per file
    assert duck_rows(tmp_path) == [(4, "dan")]
    # a transient failure: exit code 3, like the umbrella CLI; the file stays
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__POSTGRES__URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    get_settings(fresh=True)
    late = "destination=postgres/database=a/table_name=b/input/load/x.csv"
    put(bucket, late, b"id\n1\n")
    assert aws.main([str(EVENTS / "eventbridge_object_created.json"), "--bucket", name, "--key", late]) == 3
    assert "TransientError" in capsys.readouterr().err and late in keys(bucket)
    assert aws.main([str(EVENTS / "sqs_s3_batch.json"), "--key", "x"]) == 2  # --key: direct events only


def test_sqs_batch_keeps_a_tables_order_after_a_transient_failure(bucket, monkeypatch, capsys):
    from shipyard.settings import get_settings
    from tests.helpers import free_port

    name, _ = bucket
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__UNREACHABLE__TYPE", "postgres")
    monkeypatch.setenv("SHIPYARD_DESTINATIONS__UNREACHABLE__URL",
                       f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    get_settings(fresh=True)
    slow = "destination=unreachable/database=analytics/table_name=users"
    put(bucket, f"{slow}/schema/create/users.json", SPEC)
    put(bucket, f"{slow}/input/load/late rows.csv", b"id,name\n9,zed\n")
    put(bucket, f"{TABLE}/input/load/bad rows.csv", b"id,name\nx,y\n")
    # message 1: the create of the unreachable table; 2: another table; 3: a load after the create
    event = event_text("sqs_s3_batch.json", bucket=name, **{
        f"{ENC_TABLE}/input/load/good+rows.csv": "destination%3Dunreachable/database%3Danalytics/"
                                                 "table_name%3Dusers/schema/create/users.json"})
    out = aws.handler(event, None)
    assert out == {"batchItemFailures": [{"itemIdentifier": "059f36b4-87a3-44ab-83d2-661975830a7d"},
                                         {"itemIdentifier": "8c9a7f3e-2b1d-4c5e-9f0a-1b2c3d4e5f60"}]}
    lines = [line for line in json_lines(capsys.readouterr().out) if "late rows" in line["key"]
             or "create/users" in line["key"] or "bad rows" in line["key"]]
    assert [(line["key"].rsplit("/", 1)[1], line["status"]) for line in lines] == [
        ("users.json", "transient"), ("bad rows.csv", "failed"), ("late rows.csv", "deferred")]
    assert "keep the table's order" in lines[2]["reason"] and lines[2]["seconds"] < 0.05
    assert {f"{slow}/schema/create/users.json", f"{slow}/input/load/late rows.csv"} <= keys(bucket)
