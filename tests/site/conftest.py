"""Fixtures for shipyard.site's tests: a site folder, a versioned bucket, a CloudFront
distribution on moto's server, and `site serve` in a thread."""

from __future__ import annotations

import shutil
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import boto3
import pytest

from shipyard.settings import SiteSettings
from shipyard.site.serve import make_server

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "site" / "public"


@pytest.fixture
def site_dir(tmp_path) -> Path:
    """A copy of examples/site/public the test may change."""
    dest = tmp_path / "public"
    shutil.copytree(EXAMPLE, dest)
    return dest


@pytest.fixture
def s3(s3_server):
    return boto3.client("s3", endpoint_url=s3_server)


@pytest.fixture
def versioned_bucket(s3_bucket, s3) -> str:
    s3.put_bucket_versioning(Bucket=s3_bucket[5:], VersioningConfiguration={"Status": "Enabled"})
    return s3_bucket


def create_distribution(bucket: str, origin_path: str = "") -> str:
    cf = boto3.client("cloudfront")
    origin = {"Id": "site", "DomainName": f"{bucket}.s3.us-east-1.amazonaws.com", "OriginPath": origin_path,
              "S3OriginConfig": {"OriginAccessIdentity": ""}}
    resp = cf.create_distribution(DistributionConfig={
        "CallerReference": uuid.uuid4().hex, "Comment": "shipyard site test", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": {"TargetOriginId": "site", "ViewerProtocolPolicy": "redirect-to-https",
                                 "MinTTL": 0, "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                 "TrustedSigners": {"Enabled": False, "Quantity": 0}},
    })
    return resp["Distribution"]["Id"]


@pytest.fixture
def distribution(versioned_bucket) -> str:
    return create_distribution(versioned_bucket[5:])


def invalidation_paths_of(dist: str, inv_id: str) -> list[str]:
    inv = boto3.client("cloudfront").get_invalidation(DistributionId=dist, Id=inv_id)["Invalidation"]
    return sorted(inv["InvalidationBatch"]["Paths"]["Items"])


@contextmanager
def serving(where: str, settings: SiteSettings | None = None) -> Iterator[str]:
    """`site serve WHERE` on a free port in a thread; yields its URL."""
    server = make_server(where, settings or SiteSettings(), port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def versions(s3, bucket_url: str) -> list[dict]:
    """Every object version in the bucket: in a versioned bucket, one per PUT or copy."""
    bucket = bucket_url[5:].split("/")[0]
    out: list[dict] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        out += page.get("Versions", [])
    return [v for v in out if not v["Key"].startswith(".shipyard/")]
