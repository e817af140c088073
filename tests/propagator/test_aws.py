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
    assert env["SHIPYARD_OUTBOX"].startswith("/tmp/")  # the only writable path in Lambda
    assert re.match(r"^\^\$\|", template["Parameters"]["LayoutPrefix"]["AllowedPattern"])


def test_local_runner_prints_the_response(capsys):
    assert aws.main([str(EVENTS / "s3_test_event.json")]) == 0
    assert json.loads(capsys.readouterr().out) == {"records": []}
    assert aws.main([str(EVENTS / "sqs_not_json.json")]) == 0
    out = capsys.readouterr().out
    assert '"batchItemFailures"' in out and "0b6f5e4d-3c2b-4a19-8877-665544332211" in out
