"""S3Store: an S3 bucket (or any S3 API server) through boto3.

Credentials come from boto3's standard chain; the endpoint from `endpoint_url` or the
standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` variables, which botocore honours itself
(https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO, Iterator

from shipyard.errors import NotFoundError, ShipyardError, TransientError
from shipyard.store.base import ObjectInfo, validate_key

# Error codes that mean "try again later", by code, never by message text.
_RETRYABLE_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
    "InternalError", "ServiceUnavailable", "503", "500", "502", "504",
}
_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}


def map_s3_error(exc: BaseException, what: str) -> ShipyardError:
    """Translate a botocore exception into our terminal / retryable errors."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        EndpointConnectionError,
        ReadTimeoutError,
        ConnectTimeoutError,
    )

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _NOT_FOUND_CODES:
            return NotFoundError(f"{what}: not found ({code})")
        if code in _RETRYABLE_CODES or (isinstance(status, int) and status >= 500):
            return TransientError(f"{what}: S3 answered {code or status}; will retry")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return ShipyardError(
                f"{what}: access denied ({code})",
                hint="check the AWS credentials and the bucket policy (s3:GetObject, s3:PutObject, "
                "s3:ListBucket, s3:DeleteObject)",
            )
        return ShipyardError(f"{what}: S3 error {code or status}")
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError,
                        ConnectTimeoutError, ConnectionError, TimeoutError)):
        return TransientError(f"{what}: cannot reach S3 ({type(exc).__name__}); will retry")
    return ShipyardError(f"{what}: {type(exc).__name__}")


def _client(endpoint_url: str | None = None) -> Any:
    import boto3
    from botocore.config import Config

    cfg = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=60)
    kwargs: dict[str, Any] = {"config": cfg}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return boto3.session.Session().client("s3", **kwargs)


class S3Store:
    """Objects under `s3://bucket/prefix/`; keys are relative to the prefix."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 client: Any = None, must_exist: bool = False) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client or _client(endpoint_url)
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        if must_exist:
            try:
                self.client.head_bucket(Bucket=bucket)
            except Exception as exc:
                err = map_s3_error(exc, f"bucket {bucket!r}")
                if isinstance(err, NotFoundError):
                    err.hint = "check the bucket name and region (AWS_DEFAULT_REGION / AWS_ENDPOINT_URL)"
                raise err from exc

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "S3Store":
        rest = url[len("s3://"):]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ShipyardError(f"invalid S3 URL {url!r}", hint="use s3://bucket or s3://bucket/prefix")
        return cls(bucket, prefix, **kwargs)

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    def _full(self, key: str) -> str:
        validate_key(key)
        return self.prefix + key

    def _rel(self, full: str) -> str:
        return full[len(self.prefix):]

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        key=self._rel(obj["Key"]),
                        size=obj["Size"],
                        modified=obj.get("LastModified"),
                        etag=obj.get("ETag", "").strip('"') or None,
                    )
        except Exception as exc:  # botocore raises many classes; map them in one place
            raise map_s3_error(exc, f"listing {self.url}/{prefix}") from exc

    def list_dirs(self, prefix: str = "") -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        out: list[str] = []
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix, Delimiter="/"):
                out += [self._rel(p["Prefix"]) for p in page.get("CommonPrefixes", [])]
        except Exception as exc:
            raise map_s3_error(exc, f"listing {self.url}/{prefix}") from exc
        return sorted(out)

    def head(self, key: str) -> ObjectInfo:
        try:
            r = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except Exception as exc:
            raise map_s3_error(exc, f"object {key!r} in {self.url}") from exc
        return ObjectInfo(
            key=key,
            size=r["ContentLength"],
            modified=r.get("LastModified"),
            etag=r.get("ETag", "").strip('"') or None,
            version_id=r.get("VersionId"),
        )

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
            return True
        except NotFoundError:
            return False

    def open(self, key: str) -> BinaryIO:
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        except Exception as exc:
            raise map_s3_error(exc, f"object {key!r} in {self.url}") from exc
        return r["Body"]  # botocore StreamingBody: read(n), iter_chunks(), close()

    def put(self, key: str, data: bytes | BinaryIO) -> None:
        try:
            if isinstance(data, (bytes, bytearray, memoryview)):
                self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=bytes(data))
            else:
                # upload_fileobj streams in parts; S3 makes the object visible only when whole.
                self.client.upload_fileobj(data, self.bucket, self._full(key))
        except Exception as exc:
            raise map_s3_error(exc, f"writing {key!r} to {self.url}") from exc

    def move(self, src: str, dst: str) -> None:
        try:
            # Managed copy: server-side, multipart above 5 GB.
            self.client.copy({"Bucket": self.bucket, "Key": self._full(src)}, self.bucket, self._full(dst))
            self.client.delete_object(Bucket=self.bucket, Key=self._full(src))
        except Exception as exc:
            raise map_s3_error(exc, f"moving {src!r} to {dst!r} in {self.url}") from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))
        except Exception as exc:
            raise map_s3_error(exc, f"deleting {key!r} in {self.url}") from exc

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def local_path(self, key: str) -> Path | None:
        return None
