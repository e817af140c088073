"""An S3 bucket (optionally a prefix of it) as the target; boto3 through `shipyard.aws` only.

- No ACL is ever sent: the bucket stays private and CloudFront reads it through Origin Access
  Control (docs/site.md shows the bucket policy).
- Every object carries `x-amz-meta-shipyard-md5`, the MD5 of its body: a multipart upload's
  ETag is not an MD5 (https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html), so for
  those the diff reads this metadata instead (one HEAD per multipart object, not per object).
- One client is shared by the upload threads (boto3 clients are thread-safe); its connection
  pool is sized to the number of workers so threads never wait for a connection.
- Rollback copies the recorded VersionId back on top (server side): it needs bucket
  versioning, which `deploy` warns about when it is off.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

from boto3.s3.transfer import TransferConfig

from shipyard import aws
from shipyard.errors import InputError, NotFoundError, ShipyardError
from shipyard.site.model import Headers, LocalFile, ReleaseFile, RemoteObject, validate_key
from shipyard.site.source import body_of
from shipyard.site.targets.base import Served, Stored

MD5_META = "shipyard-md5"


class S3Target:
    def __init__(self, url: str, *, workers: int = 16, multipart_threshold_mb: int = 64) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise InputError(f"not an S3 URL: {url!r}", hint="use s3://bucket or s3://bucket/prefix")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/") + "/" if parsed.path.strip("/") else ""
        self.url = f"s3://{self.bucket}/{self.prefix}"
        # Timestamps stay text: the diff never reads them (see shipyard.aws.session).
        self.client = aws.client("s3", text_timestamps=True, max_pool_connections=max(10, workers + 2))
        self.transfer = TransferConfig(multipart_threshold=multipart_threshold_mb << 20,
                                       multipart_chunksize=multipart_threshold_mb << 20,
                                       max_concurrency=4)
        self.threshold = multipart_threshold_mb << 20
        self.workers = workers

    def _full(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def check(self) -> None:
        try:
            with aws.aws_errors(f"opening bucket {self.bucket}"):
                self.client.head_bucket(Bucket=self.bucket)
        except NotFoundError:
            raise NotFoundError(f"bucket {self.bucket!r} does not exist",
                                hint="create it (docs/site.md: private, versioning on, behind "
                                     "CloudFront OAC) or check the name in --to") from None

    def list(self, prefix: str = "", exclude: tuple[str, ...] = ()) -> dict[str, RemoteObject]:
        """One delimited listing of `prefix`'s top level, then each of its folders listed in
        parallel (a large site lists several times faster), skipping folders in `exclude`."""
        what = f"listing {self.url}{prefix}"
        full = self.prefix + prefix
        items: list[dict[str, Any]] = []
        folders: list[str] = []
        with aws.aws_errors(what):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=full, Delimiter="/"):
                items += page.get("Contents", [])
                folders += [p["Prefix"] for p in page.get("CommonPrefixes", [])
                            if not p["Prefix"][len(self.prefix):].startswith(exclude)]

        def deep(folder: str) -> list[dict[str, Any]]:
            return list(aws.paginate(self.client, "list_objects_v2", "Contents", what=what,
                                     Bucket=self.bucket, Prefix=folder))

        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(folders)))) as pool:
            for found in pool.map(deep, folders):
                items += found
        out: dict[str, RemoteObject] = {}
        for item in items:
            key = item["Key"][len(self.prefix):]
            out[key] = RemoteObject(key, item["ETag"].strip('"'), item["Size"])
        for key, obj in out.items():
            if obj.multipart:
                with aws.aws_errors(f"reading s3://{self.bucket}/{self.prefix}{key}"):
                    meta = self.client.head_object(Bucket=self.bucket, Key=self._full(key))["Metadata"]
                out[key] = RemoteObject(key, obj.etag, obj.size, meta.get(MD5_META))
        return out

    @staticmethod
    def _args(headers: Headers, body_md5: str) -> dict[str, Any]:
        args: dict[str, Any] = {"ContentType": headers.content_type, "CacheControl": headers.cache_control,
                                "Metadata": {MD5_META: body_md5}}
        if headers.content_encoding:
            args["ContentEncoding"] = headers.content_encoding
        return args

    def put(self, key: str, f: LocalFile) -> Stored:
        full = self._full(key)
        args = self._args(f.headers, f.body_md5)
        with aws.aws_errors(f"uploading {key} to {self.url}"):
            if f.size < self.threshold:
                resp = self.client.put_object(Bucket=self.bucket, Key=full, Body=body_of(f), **args)
                return Stored(resp.get("VersionId"), resp["ETag"].strip('"'))
            if f.headers.content_encoding:
                self.client.upload_fileobj(io.BytesIO(body_of(f)), self.bucket, full, ExtraArgs=args, Config=self.transfer)
            else:  # streamed from disk in parts, never whole in memory
                self.client.upload_file(f.path, self.bucket, full, ExtraArgs=args, Config=self.transfer)
            head = self.client.head_object(Bucket=self.bucket, Key=full)
            return Stored(head.get("VersionId"), head["ETag"].strip('"'))

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            batch = [{"Key": self._full(k)} for k in keys[start:start + 1000]]
            with aws.aws_errors(f"deleting from {self.url}"):
                resp = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if resp.get("Errors"):
                first = resp["Errors"][0]
                raise ShipyardError(f"S3 refused to delete {len(resp['Errors'])} objects "
                                    f"(first: {first.get('Key')}: {first.get('Code')})")

    def can_restore(self) -> str | None:
        with aws.aws_errors(f"reading the versioning of {self.bucket}"):
            status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        return None if status == "Enabled" else f"bucket {self.bucket} has no versioning"

    def restore(self, key: str, rf: ReleaseFile) -> Stored:
        if not rf.version:
            raise ShipyardError(f"cannot restore {key!r}: the release recorded no version of it",
                                hint="the bucket had no versioning when that release was made")
        full = self._full(key)
        with aws.aws_errors(f"restoring {key} in {self.url}"):
            resp = self.client.copy_object(
                Bucket=self.bucket, Key=full, MetadataDirective="COPY",
                CopySource={"Bucket": self.bucket, "Key": full, "VersionId": rf.version})
        return Stored(resp.get("VersionId"), resp["CopyObjectResult"]["ETag"].strip('"'))

    def read_text(self, key: str) -> str | None:
        try:
            with aws.aws_errors(f"reading {self.url}{key}"):
                return self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"].read().decode()
        except NotFoundError:
            return None

    def write_text(self, key: str, text: str) -> None:
        with aws.aws_errors(f"writing {self.url}{key}"):
            self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=text.encode(),
                                   ContentType="application/json", CacheControl="no-cache")

    def list_text(self, prefix: str) -> list[str]:
        keys = [item["Key"][len(self.prefix):] for item in aws.paginate(
            self.client, "list_objects_v2", "Contents", what=f"listing {self.url}{prefix}",
            Bucket=self.bucket, Prefix=self.prefix + prefix, Delimiter="/")]
        return sorted(k for k in keys if k.endswith(".json"))

    def get(self, key: str) -> Served | None:
        try:
            with aws.aws_errors(f"reading {self.url}{key}"):
                resp = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        except (NotFoundError, InputError):
            return None
        headers = Headers(resp.get("ContentType", "application/octet-stream"),
                          resp.get("CacheControl", "no-cache"), resp.get("ContentEncoding"))
        return Served(headers, resp["Body"].iter_chunks(1 << 16), resp.get("ContentLength"))
