"""Fixtures every tool's tests share: real services, an S3 API server on loopback, isolation.

Services are real (PostgreSQL, MariaDB, moto's S3 server over HTTP). When one is not
answering, the tests that need it FAIL with the command that starts it; nothing is skipped.
`make test` runs scripts/ensure-services.sh first, so on CI they are up.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.helpers import answers as _answers
from tests.helpers import free_port  # noqa: F401  (imported from here by older tests)

pytest_plugins = ["tests.helpers.fixtures"]

REPO = Path(__file__).resolve().parent.parent

PG_ADMIN_URL = os.environ.get("SHIPYARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_URL = os.environ.get("SHIPYARD_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


@pytest.fixture(autouse=True)
def _isolate(tmp_path, monkeypatch):
    """Each test runs in its own folder with default settings: no Slack token, its own outbox."""
    monkeypatch.chdir(tmp_path)
    for var in list(os.environ):
        if var.startswith("SHIPYARD_") and not var.startswith("SHIPYARD_TEST_"):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.setenv("SHIPYARD_OUTBOX", str(tmp_path / "outbox.jsonl"))
    from shipyard.settings import forget_settings

    forget_settings()
    yield
    forget_settings()


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    if not _answers("127.0.0.1", 5432):
        pytest.fail("PostgreSQL is not answering on 127.0.0.1:5432; run `make services` "
                    "(pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)")
    return PG_ADMIN_URL


@pytest.fixture
def pg_database(pg_admin_url):
    """A fresh, empty PostgreSQL database; yields its name, drops it afterwards."""
    import psycopg

    name = f"shipyard_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mysql_url() -> str:
    if not _answers("127.0.0.1", 3306):
        pytest.fail("MariaDB is not answering on 127.0.0.1:3306; run `make services` "
                    "(start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd)")
    return MYSQL_URL


@pytest.fixture
def mysql_database(mysql_url):
    """A fresh, empty MariaDB database; yields its name, drops it afterwards."""
    import pymysql

    name = f"shipyard_t_{uuid.uuid4().hex[:10]}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        conn.cursor().execute(f"CREATE DATABASE `{name}`")
        yield name
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 API server on 127.0.0.1 (HTTP); sets the standard AWS_* variables for boto3."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield endpoint
    server.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A fresh bucket on the S3 server; yields `s3://<name>`."""
    import boto3

    name = f"shipyard-t-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return f"s3://{name}"


@pytest.fixture(params=["local", "s3"])
def store_url(request, tmp_path) -> str:
    """Parametrizes a test over both stores: a local folder and an S3 bucket over HTTP."""
    if request.param == "local":
        return str(tmp_path / "bucket")
    return request.getfixturevalue("s3_bucket")
