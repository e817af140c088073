"""shipyard.aws against moto's server over HTTP: clients, assume-role, error mapping."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from shipyard import aws
from shipyard.errors import ConfigError, InputError, NotFoundError, ShipyardError, TransientError
from shipyard.settings import get_settings


def _client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "secret=hunter2"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "DoThing")


@pytest.mark.parametrize("code,status,kind", [
    ("NoSuchKey", 404, NotFoundError),
    ("InvalidAMIID.NotFound", 400, NotFoundError),
    ("ClusterNotFoundException", 400, NotFoundError),
    ("ThrottlingException", 400, TransientError),
    ("SomethingNew", 503, TransientError),
    ("ValidationException", 400, InputError),
    ("AccessDenied", 403, ShipyardError),
])
def test_errors_are_mapped_by_code_never_by_message(code, status, kind):
    err = aws.map_error(_client_error(code, status), "doing a thing")
    assert type(err) is kind
    assert code in err.message and "hunter2" not in str(err)
    assert err.retryable is (kind is TransientError)


def test_connection_errors_are_retryable():
    err = aws.map_error(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "x")
    assert isinstance(err, TransientError) and err.retryable


def test_aws_errors_context_maps_and_chains():
    with pytest.raises(NotFoundError) as info:
        with aws.aws_errors("reading"):
            raise _client_error("NoSuchBucket", 404)
    assert isinstance(info.value.__cause__, ClientError)


def test_client_honours_endpoint_and_is_cached(s3_server):
    s3 = aws.client("s3")
    assert s3.meta.endpoint_url == s3_server
    assert aws.client("s3") is s3
    assert aws.client("s3", region="eu-west-1") is not s3
    s3.create_bucket(Bucket="aws-module-test")
    assert "aws-module-test" in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_settings_region_and_retries(monkeypatch, s3_server):
    monkeypatch.setenv("SHIPYARD_AWS__REGION", "eu-central-1")
    monkeypatch.setenv("SHIPYARD_AWS__MAX_ATTEMPTS", "2")
    get_settings(fresh=True)
    c = aws.client("sqs", cache=False)
    assert c.meta.region_name == "eu-central-1"
    assert c.meta.config.retries["total_max_attempts"] == 3  # botocore counts the first call too


def test_assume_role_into_another_account(s3_server):
    iam = aws.client("iam")
    role = iam.create_role(RoleName="shipyard-test-role", AssumeRolePolicyDocument="{}")["Role"]
    arn = role["Arn"].replace("123456789012", "111111111111")
    sess = aws.session(role_arn=arn, session_name="shipyard-test")
    creds = sess.get_credentials().get_frozen_credentials()
    assert creds.access_key and creds.access_key != "testing"
    who = aws.client("sts", role_arn=arn).get_caller_identity()
    assert who["Account"] == "111111111111"
    assert "assumed-role" in who["Arn"]


def test_paginate_walks_every_page(s3_server):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="aws-paginate-test")
    for i in range(7):
        s3.put_object(Bucket="aws-paginate-test", Key=f"k{i}", Body=b"x")
    keys = [o["Key"] for o in aws.paginate(s3, "list_objects_v2", "Contents",
                                           Bucket="aws-paginate-test", PaginationConfig={"PageSize": 2})]
    assert keys == [f"k{i}" for i in range(7)]


def test_missing_region_or_credentials_are_config_errors():
    from botocore.exceptions import NoCredentialsError, NoRegionError
    assert isinstance(aws.map_error(NoCredentialsError(), "x"), ConfigError)
    assert isinstance(aws.map_error(NoRegionError(), "x"), ConfigError)


def test_invalid_parameters_are_input_errors_without_values(s3_server):
    with pytest.raises(InputError) as info:
        with aws.aws_errors("putting a parameter"):
            aws.client("ssm").put_parameter(Name="p", Value=12345678, Type="SecureString")
    assert "12345678" not in str(info.value) and "Value" in str(info.value)


def test_text_timestamps_keep_listing_dates_unparsed(s3_server):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="aws-text-ts")
    s3.put_object(Bucket="aws-text-ts", Key="k", Body=b"x")
    fast = aws.client("s3", text_timestamps=True)
    assert fast is not s3
    assert isinstance(fast.list_objects_v2(Bucket="aws-text-ts")["Contents"][0]["LastModified"], str)
    assert not isinstance(s3.list_objects_v2(Bucket="aws-text-ts")["Contents"][0]["LastModified"], str)


def test_region_follows_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.delenv("AWS_REGION", raising=False)
    assert aws.region_name() == "ap-south-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    assert aws.region_name() == "eu-north-1"  # the cached chain is keyed on the environment
