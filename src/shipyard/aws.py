"""One place that makes boto3 clients for every tool, and maps botocore errors once.

- Region: the argument, else `SHIPYARD_AWS__REGION`, else boto3's own chain (AWS_REGION,
  AWS_DEFAULT_REGION, ~/.aws/config), else us-east-1 so a laptop without a profile still works.
- Endpoint: the argument, else `SHIPYARD_AWS__ENDPOINT_URL`, else what botocore reads itself:
  AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>
  (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html). The tests point
  every tool at moto's server this way.
- Retries: botocore's `standard` mode (throttling and 5xx retried with backoff) and timeouts,
  from settings (https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html).
- Assume-role: `session(role_arn=...)` returns a session whose credentials refresh themselves
  before they expire (custodian and the AMI pipeline run across accounts).
- Errors: `map_error` turns any botocore exception into a terminal or retryable ShipyardError by
  error *code* and class, never by message text; `aws_errors(...)` wraps a block with it.
"""

from __future__ import annotations

import os
import re
import threading
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)

from shipyard.errors import ConfigError, InputError, NotFoundError, ShipyardError, TransientError
from shipyard.settings import get_settings

DEFAULT_REGION = "us-east-1"

# Codes that mean "the same call may succeed later" (AWS's own list of throttling and transient
# codes for the standard retry mode, plus the HTTP statuses moto and S3 use as codes).
RETRYABLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException", "RequestTimeTooSkewed",
    "InternalError", "InternalFailure", "InternalServerError", "InternalServiceError",
    "InternalServiceErrorException", "ServiceUnavailable", "ServiceUnavailableException",
    "500", "502", "503", "504",
})
# "No such thing": the codes services use, plus the *NotFound / *NotFoundException families
# (NoSuchBucket, InvalidAMIID.NotFound, ResourceNotFoundException, ClusterNotFoundException...).
NOT_FOUND_CODES = frozenset({
    "404", "NotFound", "NoSuchKey", "NoSuchBucket", "NoSuchEntity", "NoSuchDistribution",
    "NoSuchInvalidation", "ResourceNotFoundException", "ParameterNotFound",
    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "EntityNotFoundException",
})
DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "403", "UnauthorizedOperation", "Forbidden",
    "InvalidAccessKeyId", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken",
    "ExpiredTokenException", "UnrecognizedClientException", "AuthFailure",
})
INVALID_CODES = frozenset({
    "ValidationError", "ValidationException", "InvalidParameterValue", "InvalidParameter",
    "InvalidParameterException", "InvalidParameterCombination", "InvalidRequest",
    "MalformedPolicyDocument", "InvalidArgument", "InvalidInput", "MissingParameter",
})


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ('' for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _status(exc: ClientError) -> int:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status if isinstance(status, int) else 0


def is_not_found(code: str) -> bool:
    return code in NOT_FOUND_CODES or code.endswith(("NotFound", "NotFoundException"))


def map_error(exc: BaseException, what: str, *, service: str = "AWS") -> ShipyardError:
    """A botocore exception as a ShipyardError: NotFoundError, TransientError (retryable),
    InputError (the request was invalid), or ShipyardError/ConfigError (terminal).

    `what` says what was being done ("listing s3://b/p", "describing cluster x"); `service`
    names who answered ("S3"). The message carries the AWS code, never the raw message (it may
    echo request data).
    """
    if isinstance(exc, ShipyardError):
        return exc
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = _status(exc)
        op = exc.operation_name or "call"
        if is_not_found(code):
            return NotFoundError(f"{what}: not found ({code})", aws_code=code, operation=op)
        if code in RETRYABLE_CODES or status >= 500:
            return TransientError(f"{what}: {service} answered {code or status} to {op}; will retry",
                                  aws_code=code, operation=op)
        if code in DENIED_CODES:
            return ShipyardError(
                f"{what}: access denied to {op} ({code})",
                hint="check the AWS credentials, the role's policy (docs/security.md lists the "
                "permissions per tool) and the region",
                aws_code=code, operation=op)
        if code in INVALID_CODES:
            return InputError(f"{what}: AWS rejected {op} as invalid ({code})",
                              aws_code=code, operation=op)
        return ShipyardError(f"{what}: AWS error {code or status} from {op}", aws_code=code,
                             operation=op)
    if isinstance(exc, NoCredentialsError):
        return ConfigError(f"{what}: no AWS credentials found",
                           hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                           "or run where an instance/task role is available")
    if isinstance(exc, NoRegionError):
        return ConfigError(f"{what}: no AWS region", hint="set AWS_REGION or SHIPYARD_AWS__REGION")
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError,
                        ConnectTimeoutError, ConnectionError, TimeoutError)):
        return TransientError(f"{what}: cannot reach {service} ({type(exc).__name__}); will retry")
    if isinstance(exc, ParamValidationError):
        # The report names the parameter and what is wrong; drop the echoed values (a value
        # may be a secret).
        report = re.sub(r"value: .*?(, type|$)", r"value: <hidden>\1", str(exc), flags=re.M)
        return InputError(f"{what}: {report}")
    if isinstance(exc, BotoCoreError):
        return ShipyardError(f"{what}: {type(exc).__name__}")
    return ShipyardError(f"{what}: {type(exc).__name__}")


@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """Run a block of AWS calls; any botocore error leaves it as a mapped ShipyardError."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise map_error(exc, what) from exc


def client_config(**overrides: Any) -> Config:
    """botocore Config from settings: retry mode and attempts, timeouts, a user agent."""
    s = get_settings().aws
    cfg = Config(
        retries={"mode": s.retry_mode, "max_attempts": s.max_attempts},
        connect_timeout=s.connect_timeout,
        read_timeout=s.read_timeout,
        user_agent_extra="shipyard",
    )
    return cfg.merge(Config(**overrides)) if overrides else cfg


def region_name(region: str | None = None) -> str:
    """The region in force: argument, settings, boto3's chain, else us-east-1."""
    if region:
        return region
    configured = get_settings().aws.region
    if configured:
        return configured
    return _chain_region(tuple(os.environ.get(v) for v in _REGION_ENV)) or DEFAULT_REGION


_REGION_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE")


@lru_cache(maxsize=16)
def _chain_region(env: tuple[str | None, ...]) -> str | None:
    """boto3's own region chain, read once per environment: making a Session costs ~4 ms, and
    `client()` asks for the region on every call, cache hits included."""
    return boto3.session.Session().region_name


def _assumed_credentials(base: boto3.session.Session, role_arn: str, session_name: str,
                         external_id: str | None, duration: int) -> RefreshableCredentials:
    sts = base.client("sts", config=client_config(), endpoint_url=get_settings().aws.endpoint_url)

    def fetch() -> dict[str, str]:
        params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": session_name,
                                  "DurationSeconds": duration}
        if external_id:
            params["ExternalId"] = external_id
        with aws_errors(f"assuming role {role_arn}"):
            creds = sts.assume_role(**params)["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    return RefreshableCredentials.create_from_metadata(
        metadata=fetch(), refresh_using=fetch, method="sts-assume-role")


def session(*, region: str | None = None, role_arn: str | None = None,
            external_id: str | None = None, session_name: str | None = None,
            duration: int = 3600, profile: str | None = None,
            text_timestamps: bool = False) -> boto3.session.Session:
    """A boto3 session in `region`; with `role_arn`, credentials of that role (refreshed before
    they expire, so a long run over many accounts never fails half-way on an expired token).

    `text_timestamps=True`: responses keep timestamps as strings. botocore parses each one with
    dateutil (~0.25 ms: over half the client time of listing 5,000 S3 keys), which a caller
    that never reads them (site's diff) need not pay."""
    base = boto3.session.Session(region_name=region_name(region), profile_name=profile)
    if not role_arn and not text_timestamps:
        return base
    core = botocore.session.Session(profile=profile)
    if text_timestamps:
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    if role_arn:
        name = session_name or get_settings().aws.role_session_name
        core._credentials = _assumed_credentials(base, role_arn, name, external_id, duration)
    return boto3.session.Session(botocore_session=core, region_name=base.region_name)


_ENV_KEYS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_REGION",
             "AWS_DEFAULT_REGION")
_clients: dict[tuple, Any] = {}
_lock = threading.Lock()


def client(service: str, *, region: str | None = None, role_arn: str | None = None,
           external_id: str | None = None, endpoint_url: str | None = None,
           boto_session: boto3.session.Session | None = None, cache: bool = True,
           text_timestamps: bool = False, **config_overrides: Any) -> Any:
    """A boto3 client for `service`, configured from settings.

    Clients are thread-safe and cached per (service, region, role, endpoint, config) so a loop
    does not pay for client creation (~20 ms each); `cache=False` or a `boto_session` opts out.
    """
    endpoint = endpoint_url or get_settings().aws.endpoint_url
    # The environment is part of the key: botocore reads AWS_ENDPOINT_URL and the credential
    # variables when a client is made, so a changed environment must make a new client.
    env = tuple(os.environ.get(v) for v in _ENV_KEYS)
    key = (service, region_name(region), role_arn, external_id, endpoint, env, text_timestamps,
           tuple(sorted(config_overrides.items())))
    if cache and boto_session is None:
        with _lock:
            found = _clients.get(key)
        if found is not None:
            return found
    sess = boto_session or session(region=region, role_arn=role_arn, external_id=external_id,
                                   text_timestamps=text_timestamps)
    kwargs: dict[str, Any] = {"config": client_config(**config_overrides)}
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    with aws_errors(f"creating a {service} client"):
        made = sess.client(service, **kwargs)
    if cache and boto_session is None:
        with _lock:
            made = _clients.setdefault(key, made)
    return made


def reset_clients() -> None:
    """Forget cached clients (tests that move AWS_ENDPOINT_URL, a settings reload)."""
    with _lock:
        _clients.clear()
    _chain_region.cache_clear()


def paginate(aws_client: Any, operation: str, result_key: str, *, what: str | None = None,
             **params: Any) -> Iterator[Any]:
    """Every item of `result_key` across all pages of `operation` (errors mapped)."""
    with aws_errors(what or f"{operation}"):
        for page in aws_client.get_paginator(operation).paginate(**params):
            yield from page.get(result_key, [])


def account_id(aws_client_or_session: Any = None) -> str:
    """The caller's account id (STS GetCallerIdentity)."""
    sts = client("sts") if aws_client_or_session is None else aws_client_or_session.client("sts")
    with aws_errors("reading the caller identity"):
        return sts.get_caller_identity()["Account"]
