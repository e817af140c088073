"""The fault proxies themselves: they must really fail and really recover."""

import time

import psycopg
import pytest

from shipyard.errors import TransientError
from shipyard.store.s3 import S3Store
from tests.reliability.faults import FaultyHTTPProxy, TCPProxy


def test_http_proxy_fails_then_recovers(s3_server, s3_bucket):
    proxy = FaultyHTTPProxy(s3_server)
    try:
        bucket = s3_bucket.removeprefix("s3://")
        store = S3Store(bucket, endpoint_url=proxy.url)
        store.put("k", b"v")
        # More failures than botocore's standard retries (4 attempts): surfaces as retryable.
        proxy.fail("503", count=10)
        with pytest.raises(TransientError):
            store.head("k")
        proxy.fail("pass")
        assert store.head("k").size == 1
        # A short outage inside botocore's retry budget is absorbed.
        proxy.fail("500", count=2)
        assert store.head("k").size == 1
        assert proxy.failed >= 6  # 4 attempts (our botocore config) + 2 absorbed
    finally:
        proxy.close()


def test_tcp_proxy_cut_drops_connections(pg_admin_url):
    proxy = TCPProxy("127.0.0.1", 5432)
    try:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres"
        conn = psycopg.connect(url, connect_timeout=5)
        assert conn.execute("select 1").fetchone() == (1,)
        assert proxy.cut() >= 1
        with pytest.raises(psycopg.OperationalError):
            conn.execute("select 1")
        proxy.refuse_for(1.0)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
        time.sleep(1.1)
        with psycopg.connect(url, connect_timeout=5) as c2:
            assert c2.execute("select 2").fetchone() == (2,)
    finally:
        proxy.close()
