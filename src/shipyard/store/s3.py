"""S3Store: an S3 bucket (or any S3 API server) through boto3.

Credentials come from boto3's standard chain; the endpoint from `endpoint_url` or the
standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` variables, which botocore honours itself
(https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO, Iterator

from shipyard import aws
from shipyard.aws import DENIED_CODES, error_code, map_error
from shipyard.errors import NotFoundError, ShipyardError
from shipyard.store.base import ObjectInfo, validate_key

def map_s3_error(exc: BaseException, what: str) -> ShipyardError:
    """botocore exceptions as our terminal / retryable errors (shipyard.aws.map_error), with the
    S3 permissions named when access is denied."""
    err = map_error(exc, what, service="S3")
    if error_code(exc) in DENIED_CODES:
        err.hint = ("check the AWS credentials and the bucket policy (s3:GetObject, s3:PutObject, "
                    "s3:ListBucket, s3:DeleteObject)")
    return err


def _client(endpoint_url: str | None = None) -> Any:
    return aws.client("s3", endpoint_url=endpoint_url, read_timeout=60)


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
