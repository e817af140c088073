"""Issue 17 (1): Redshift IAM authentication. GetClusterCredentials runs against moto's server;
redshift-serverless GetCredentials (which moto lacks) through tests/propagator/fake_serverless.py."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shipyard import aws
from shipyard.errors import ConfigError
from shipyard.notify import MemoryNotifier
from shipyard.propagator import Propagator
from shipyard.propagator.redshift_auth import IamPassword
from shipyard.settings import DestinationSettings, get_settings
from tests.propagator.fake_serverless import fake_get_credentials


@pytest.fixture
def cluster(s3_server) -> str:
    name = f"c{uuid.uuid4().hex[:8]}"
    aws.client("redshift").create_cluster(ClusterIdentifier=name, NodeType="dc2.large", MasterUsername="admin",
                                          MasterUserPassword="Passw0rd!", ClusterType="single-node")
    return name


class Clock:
    def __init__(self) -> None:
        self.t = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.t


def test_provisioned_credentials_are_fetched_once_and_refreshed_before_expiry(cluster):
    clock = Clock()
    cfg = DestinationSettings(type="redshift", iam=True, cluster_identifier=cluster)
    auth = IamPassword("warehouse", "postgresql://loader@example:5439/dev", cfg, now=clock)
    calls = []
    client = aws.client("redshift")
    client.meta.events.register("before-call.redshift.GetClusterCredentials", lambda **kw: calls.append(1))
    user, first = auth.credentials()
    assert user == "IAM:loader" and first and len(calls) == 1
    assert auth.credentials()[1] == first and len(calls) == 1  # cached
    clock.t += timedelta(seconds=900) - timedelta(minutes=5) + timedelta(seconds=30)  # inside the margin
    auth.credentials()
    assert len(calls) == 2  # fetched again before it expired


def test_serverless_credentials_through_the_fake(s3_server):
    cfg = DestinationSettings(type="redshift", iam=True, workgroup="analytics", region="eu-west-1")
    with fake_get_credentials(aws.client("redshift-serverless", region="eu-west-1")) as calls:
        user, password = IamPassword("wh", "postgresql://ignored@example:5439/dev", cfg).credentials()
    assert (user, password) == ("IAMR:loader", "fake-password-1")
    assert calls == [{"workgroupName": "analytics", "dbName": "dev", "durationSeconds": 900}]


def test_misconfigured_iam_is_a_config_error(s3_server):
    with pytest.raises(ConfigError, match="cluster_identifier"):
        IamPassword("wh", "postgresql://u@x/dev", DestinationSettings(iam=True))
    with pytest.raises(ConfigError, match="user"):
        IamPassword("wh", "postgresql://x/dev", DestinationSettings(iam=True, cluster_identifier="c"))
    auth = IamPassword("wh", "postgresql://u@x/dev", DestinationSettings(iam=True, cluster_identifier="nope"))
    with pytest.raises(ConfigError, match="not found"):  # the file would stay pending, not fail
        auth.credentials()


def test_a_destination_with_iam_loads_with_the_temporary_password(cluster, tmp_path, monkeypatch,
                                                                 pg_admin_url, pg_database):
    """The URL holds no password; the engine connects as the user IAM returns (PostgreSQL stands
    in for the cluster: its role "IAM:<user>" accepts the temporary password)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    role = f"IAM:loader_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as c:
        c.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')
    try:
        monkeypatch.setenv("SHIPYARD_DESTINATIONS__WAREHOUSE__TYPE", "postgres")
        monkeypatch.setenv("SHIPYARD_DESTINATIONS__WAREHOUSE__URL", f"postgresql://{role[4:]}@127.0.0.1:5432/postgres")
        monkeypatch.setenv("SHIPYARD_DESTINATIONS__WAREHOUSE__IAM", "true")
        monkeypatch.setenv("SHIPYARD_DESTINATIONS__WAREHOUSE__CLUSTER_IDENTIFIER", cluster)
        bucket = tmp_path / "b"
        t = f"destination=warehouse/database={pg_database}/table_name=t/"
        (bucket / t / "schema/create").mkdir(parents=True)
        (bucket / t / "schema/create/t.json").write_text(json.dumps({"column_specification": {"id": "INTEGER"}}))
        with Propagator.from_settings(str(bucket), get_settings(fresh=True), notifier=MemoryNotifier()) as p:
            [o] = p.process_pending()
        assert o.status == "succeeded", o
        with psycopg.connect(make_conninfo(pg_admin_url, dbname=pg_database)) as c:
            assert c.execute("SELECT tableowner FROM pg_tables WHERE tablename = 't'").fetchone() == (role,)
            c.execute(f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as c:
            c.execute(f'DROP ROLE IF EXISTS "{role}"')
