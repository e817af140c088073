"""CloudFront: check the distribution, invalidate paths, wait for completion, through shipyard.aws.

Invalidation paths are relative to the distribution, not the bucket: a distribution whose origin
path is `/site` serves `s3://bucket/site/a.html` as `/a.html`
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/Invalidation.html#invalidation-specifying-objects-paths),
so the URL prefix of a deploy is its key prefix minus the origin path of the S3 origin.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from shipyard import aws
from shipyard.errors import InputError, NotFoundError, ShipyardError, TransientError


class CloudFront:
    def __init__(self, distribution_id: str) -> None:
        self.id = distribution_id
        self.client = aws.client("cloudfront")
        self._config: dict[str, Any] | None = None

    def config(self) -> dict[str, Any]:
        if self._config is None:
            try:
                with aws.aws_errors(f"reading CloudFront distribution {self.id}"):
                    self._config = self.client.get_distribution(Id=self.id)["Distribution"]
            except NotFoundError:
                raise InputError(f"CloudFront distribution {self.id!r} does not exist",
                                 hint="pass the distribution's ID (E2QWRUHAPOMQZL, not its domain): "
                                      "aws cloudfront list-distributions") from None
        return self._config

    def domain(self) -> str:
        return str(self.config().get("DomainName", ""))

    def url_prefix(self, bucket: str | None, key_prefix: str) -> str:
        """The URL path under which `key_prefix` of `bucket` is served."""
        origins = self.config()["DistributionConfig"]["Origins"].get("Items", [])
        origin_path = ""
        for origin in origins:
            name = origin.get("DomainName", "")
            if bucket is None or name.split(".s3")[0] == bucket or name == bucket:
                origin_path = (origin.get("OriginPath") or "").strip("/")
                break
        else:
            if origins:
                origin_path = (origins[0].get("OriginPath") or "").strip("/")
        key_prefix = key_prefix.strip("/")
        if origin_path and not (key_prefix + "/").startswith(origin_path + "/"):
            raise InputError(f"distribution {self.id} serves /{origin_path} of its bucket, but the "
                             f"deploy writes to /{key_prefix}",
                             hint="deploy under the origin path, or pass the distribution that serves it")
        rest = key_prefix[len(origin_path):].strip("/")
        return "/" + (rest + "/" if rest else "")

    def invalidate(self, paths: list[str], caller_reference: str) -> str:
        with aws.aws_errors(f"invalidating {len(paths)} paths of {self.id}"):
            resp = self.client.create_invalidation(
                DistributionId=self.id,
                InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": paths},
                                   "CallerReference": caller_reference})
        return str(resp["Invalidation"]["Id"])

    def status(self, invalidation_id: str) -> str:
        with aws.aws_errors(f"reading invalidation {invalidation_id}"):
            return str(self.client.get_invalidation(DistributionId=self.id, Id=invalidation_id)
                       ["Invalidation"]["Status"])


def wait_until_completed(status: Callable[[], str], *, timeout: float,
                         on_tick: Callable[[str, float], None] | None = None,
                         clock: Callable[[], float] = time.monotonic,
                         sleep: Callable[[float], None] = time.sleep,
                         interval: float = 5.0) -> float:
    """Poll `status()` until it says Completed; returns the seconds waited. A poll that fails
    transiently is retried; past `timeout` it raises (the invalidation keeps running in AWS)."""
    start = clock()
    while True:
        try:
            current = status()
        except TransientError:
            current = "InProgress"
        waited = clock() - start
        if on_tick:
            on_tick(current, waited)
        if current.lower() == "completed":
            return waited
        if waited >= timeout:
            raise ShipyardError(f"the invalidation is still {current} after {waited:.0f} s",
                                hint="it keeps running in CloudFront; raise site.wait_timeout, or "
                                     "check it in the console")
        sleep(max(0.05, min(interval, timeout - waited)))
