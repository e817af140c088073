"""Redshift's IAM authentication: a temporary database password, refreshed before it expires.

Provisioned clusters: `redshift:GetClusterCredentials` for the URL's user on `cluster_identifier`
(https://docs.aws.amazon.com/redshift/latest/APIReference/API_GetClusterCredentials.html).
Serverless: `redshift-serverless:GetCredentials` on `workgroup`
(https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_GetCredentials.html).
Both through shipyard.aws (client, region, retries, error map). Never run on a real cluster.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from shipyard import aws
from shipyard.errors import ConfigError, ShipyardError
from shipyard.settings import DestinationSettings

# Refresh this long before the password expires, so a load never starts on one about to lapse.
MARGIN = timedelta(minutes=5)
DURATION_SECONDS = 900  # the API's minimum: short-lived passwords


class IamPassword:
    """`credentials()` -> (user, password) for the destination, fetched once and refreshed."""

    def __init__(self, name: str, url: str, cfg: DestinationSettings,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        if not (cfg.cluster_identifier or cfg.workgroup):
            raise ConfigError(f"destination {name!r}: iam = true needs cluster_identifier (provisioned) "
                              "or workgroup (Serverless)",
                              hint=f"set SHIPYARD_DESTINATIONS__{name.upper()}__CLUSTER_IDENTIFIER or __WORKGROUP")
        u = urlsplit(url)
        self.name, self.cfg, self.now = name, cfg, now
        self.user = unquote(u.username or "")
        self.database = u.path.lstrip("/") or "dev"
        if cfg.cluster_identifier and not self.user:
            raise ConfigError(f"destination {name!r}: the URL needs the database user for IAM authentication",
                              hint="use postgresql://<user>@<cluster endpoint>:5439/<database> (no password)")
        self._cached: tuple[str, str, datetime] | None = None
        self._lock = threading.Lock()

    def credentials(self) -> tuple[str, str]:
        with self._lock:
            if self._cached is None or self.now() >= self._cached[2] - MARGIN:
                self._cached = self._fetch()
            return self._cached[0], self._cached[1]

    def _fetch(self) -> tuple[str, str, datetime]:
        cfg = self.cfg
        what = f"getting a Redshift password for destination {self.name!r}"
        try:
            with aws.aws_errors(what):
                if cfg.cluster_identifier:
                    r: dict[str, Any] = aws.client("redshift", region=cfg.region).get_cluster_credentials(
                        DbUser=self.user, DbName=self.database, ClusterIdentifier=cfg.cluster_identifier,
                        DurationSeconds=DURATION_SECONDS, AutoCreate=False)
                    return r["DbUser"], r["DbPassword"], _utc(r["Expiration"])
                r = aws.client("redshift-serverless", region=cfg.region).get_credentials(
                    workgroupName=cfg.workgroup, dbName=self.database, durationSeconds=DURATION_SECONDS)
                return r["dbUser"], r["dbPassword"], _utc(r["expiration"])
        except ShipyardError as exc:
            if exc.retryable:
                raise
            # No such cluster, access denied: the destination's settings, not the file (stays pending).
            raise ConfigError(exc.message, hint="check cluster_identifier / workgroup, the region, and the "
                              "role's redshift:GetClusterCredentials / redshift-serverless:GetCredentials") from exc


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value)).astimezone(timezone.utc)
