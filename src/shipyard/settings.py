"""Settings for every tool, in one place.

Sources, highest first: keyword arguments, environment variables (`SHIPYARD_` prefix, `__`
between levels, e.g. `SHIPYARD_DESTINATIONS__POSTGRES__URL`), then `shipyard.toml` (the file
named by `SHIPYARD_CONFIG`, else `./shipyard.toml` when it exists).

Every option is a declared field of a section model (`extra="forbid"`): a tool never reads
undeclared keys. A `shipyard.toml` key that is not declared is an error naming the file, the key
and the closest declared one; an unknown `SHIPYARD_*` variable is a warning with a did-you-mean
(and is otherwise ignored): shipyard.settings_sources. docs/configuration.md lists the rules.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shipyard.errors import ConfigError
from shipyard.redact import forget_secrets, redact, remember_secrets, url_password
from shipyard.settings_sources import CheckedEnv, CheckedToml, unknown_keys

__all__ = ["Settings", "get_settings", "forget_settings", "config_file", "unknown_keys"]

_QUERY_PASSWORD = re.compile(r"[?&]password=([^&#]+)", re.IGNORECASE)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DestinationSettings(_Section):
    """One warehouse the propagator can load into; the key's `destination=<name>` picks it."""

    url: str | None = None
    # The dialect; defaults to the destination's name (postgres, duckdb, mysql, redshift).
    type: str | None = None
    # Redshift: the role COPY assumes to read from S3.
    iam_role: str | None = None
    # Redshift: connect with a temporary password from IAM (the URL then has none): provisioned
    # clusters by `cluster_identifier` (GetClusterCredentials, as the URL's user), Serverless by
    # `workgroup` (GetCredentials). `region` defaults to shipyard.aws's.
    iam: bool = False
    cluster_identifier: str | None = None
    workgroup: str | None = None
    region: str | None = None


class PropagatorSettings(_Section):
    """The propagator (docs/propagator.md#settings)."""

    channel: str = "data-loader-notification"
    poll_interval: float = 0.5
    workers: int = 4
    # `watch`: the longest wait between polls after failed passes (backoff cap, seconds).
    retry_max_seconds: float = 30.0
    # Lambda / `watch --queue`: the only bucket served (others' events are ignored), and the
    # folder under it where the layout starts.
    bucket: str | None = None
    prefix: str = ""
    # `watch --queue`: SQS long-poll wait (20 s is SQS's maximum: fewest empty receives).
    queue_wait_seconds: int = Field(20, ge=0, le=20)
    # Lambda: below this many seconds left, an SQS batch stops starting new messages.
    lambda_reserve_seconds: float = 20.0
    # Local buckets: a file is picked up once its size and mtime have not changed for this long
    # (a file still being copied in is never loaded half-written). S3 objects appear whole.
    settle_seconds: float = Field(1.0, ge=0)


class JarvisSettings(_Section):
    error_channel: str = "jarvis-error-notifications"
    # Where shipyard.notify's Slack notices go when a notice names no channel.
    default_channel: str = "data-loader-notification"
    # Shared secret for `shipyard jarvis serve` (header X-Shipyard-Secret).
    http_secret: str | None = None
    bot_name: str = "jarvis"
    # Slack Web API: per-request timeout, retries after 429 and after 5xx / connection errors.
    timeout: int = 30
    rate_limit_retries: int = 3
    server_error_retries: int = 2
    retry_backoff: float = 0.5
    channel_cache_seconds: float = 600.0
    # Local folders an attachment may come from (payloads from the HTTP endpoint and the Lambda).
    # None by default: only S3 attachments; `jarvis send --attach ./file` allows its own file.
    attachment_roots: list[Path] = Field(default_factory=list)
    # The largest attachment sent (slack_sdk holds the whole file in memory to upload it).
    max_attachment_bytes: int = Field(default=100 * 1024**2, gt=0)
    # The largest HTTP request body `jarvis serve` reads, and how deep its JSON may nest.
    max_body_bytes: int = Field(default=1_000_000, gt=0)
    max_json_depth: int = Field(default=32, gt=0)


class LakeSettings(_Section):
    # [lake.datasets.NAME] tables; each is validated by shipyard.lake.config.DatasetConfig.
    datasets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # DuckDB's cap for the lake ("2GB"; "" for DuckDB's own 80% of RAM); past it, spill to disk.
    memory_limit: str | None = "512MB"
    channel: str = "data-lake-notifications"  # where the lake's notices go (Slack via jarvis)
    threads: int | None = None  # DuckDB threads (default: the cores this process may use)
    # Types from each part's first rows, proved by one strict read (lake/strict.py); false:
    # DuckDB's detection over every row first (the DuckDB engine; Spark always does that).
    fast_typing: bool = True
    spark_master: str = "local[2]"  # --engine spark: local[N], yarn (EMR), ...
    spark_paths: str | None = None  # "uri" | "local": force how executors see files (tests)
    spark_s3_scheme: str = "s3"  # EMRFS reads s3://; open-source hadoop-aws wants s3a
    crash_after_files: int | None = None  # test hook: SIGKILL after N published files


class PulseSettings(_Section):
    channel: str = "pulse-alerts"
    # SQLite file by default; a postgresql:// URL records history in PostgreSQL.
    database_url: str | None = None
    # Checks in flight at once; more wait for a slot.
    concurrency: int = Field(default=100, gt=0)
    retention_days: float = Field(default=35, gt=0)
    rollup_retention_days: float = Field(default=400, gt=0)
    # How often the config folder is scanned, and results are written (seconds).
    reload_interval: float = Field(default=1.0, gt=0)
    flush_interval: float = Field(default=0.5, gt=0)
    # Limits against a monitor file or a target that would take the monitor down
    # (docs/security.md): the shortest schedule, the largest monitor file and YAML document
    # (nodes after alias expansion), the response body read before body conditions run.
    min_interval: float = Field(default=1.0, gt=0)
    max_file_bytes: int = Field(default=1_000_000, gt=0)
    max_yaml_nodes: int = Field(default=100_000, gt=0)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    # SIGTERM: checks still running after this many seconds are cancelled.
    stop_timeout: float = Field(default=2.0, ge=0)
    # Certificate expiry warnings (days left), and the push endpoint's rate limit per token.
    cert_warn_days: list[int] = Field(default_factory=lambda: [30, 7])
    push_rate_per_minute: int = Field(default=60, gt=0)


class CustodianSettings(_Section):
    """shipyard custodian: where c7n lives, the findings ledger, the run folder, the caps."""

    # Folder holding the `custodian` and `c7n-org` executables (c7n pins its dependencies
    # exactly, so it lives in its own venv: `.venv-c7n/bin` next to the checkout by default).
    c7n_bin_dir: str | None = None
    # SQLite file by default; a postgresql:// URL keeps the ledger in PostgreSQL.
    database_url: str = "custodian-findings.sqlite"
    # Where each run's c7n outputs go: a folder or s3://bucket/prefix.
    output_url: str = "custodian-runs"
    channel: str = "custodian-findings"
    # Remediation: at most this many resources acted on per run; more stops and alerts.
    max_remediations: int = 20
    # Still-failing findings are re-sent to Security Hub this often (it archives stale ones).
    securityhub_refresh_days: int = 30
    # c7n-org --region when neither --regions nor the accounts file names any.
    regions: list[str] = Field(default_factory=lambda: ["us-east-1"])
    # Seconds one c7n-org run may take before it is stopped.
    run_timeout: float = 3600


class AmiSettings(_Section):
    """`shipyard ami`: image retention and releases to Auto Scaling groups (docs/ami.md)."""

    channel: str = "deployments"
    region: str | None = None
    role_arn: str | None = None  # assume this role (the AMI account) for every call
    branch_tag: str = "branch"
    timestamp_tag: str = "timestamp"
    keep: int = Field(default=5, ge=2)  # images per branch; also the release's --keep
    keep_versions: int = Field(default=5, ge=2)
    timeout: str = "30m"  # how long a refresh may take (30m, 1h, 900s)
    on_timeout: Literal["rollback", "cancel"] = "rollback"
    min_healthy: int = Field(default=90, ge=0, le=100)
    warmup: int = Field(default=60, ge=0)
    checkpoint_delay: int = Field(default=300, ge=0)  # AWS's default is 3600 s per checkpoint
    poll_interval: float = Field(default=15, gt=0)


class SiteHeaderRule(BaseModel):
    """One Cache-Control rule of `shipyard site` (first match wins); `match` is a glob over the
    key ('*' crosses '/'), `fingerprinted` limits it to names with a content hash in them."""

    model_config = ConfigDict(extra="forbid")
    match: str = "*"
    fingerprinted: bool | None = None
    cache_control: str


def _default_site_rules() -> list[SiteHeaderRule]:
    return [SiteHeaderRule(match="*.html", cache_control="no-cache"),
            SiteHeaderRule(fingerprinted=True, cache_control="public, max-age=31536000, immutable"),
            SiteHeaderRule(cache_control="public, max-age=3600")]


class SiteSettings(_Section):
    """`shipyard site` (docs/site.md): headers, compression, invalidation, verify, previews."""

    headers: list[SiteHeaderRule] = Field(default_factory=_default_site_rules)
    # A name with a content hash in it (app.3f9a1c.js, index-B2xW3k9a.css): cached a year.
    fingerprint_pattern: str = (r"[.-](?=[0-9a-f]*[0-9])[0-9a-f]{6,}\.[A-Za-z0-9]+$|"
                                r"[.-](?=[A-Za-z0-9_]*[0-9])(?=[A-Za-z0-9_]*[A-Za-z])[A-Za-z0-9_]{8}\.[A-Za-z0-9]+$")
    compress: Literal["none", "gzip", "br"] = "none"
    exclude: list[str] = Field(default_factory=lambda: [".git/*", "*.DS_Store", ".shipyard/*"])
    target: str | None = None  # s3://bucket[/prefix] or a folder: the default of --to / TARGET
    distribution: str | None = None
    url: str | None = None  # the site's public URL: verify fetches changed paths through it
    preview_url: str | None = None  # e.g. "https://preview.example.com/previews/{branch}/"
    invalidation_threshold: int = Field(default=10, ge=1, le=3000)
    wait_timeout: float = 900
    workers: int = Field(default=16, ge=1, le=128)
    multipart_threshold_mb: int = Field(default=64, ge=5)
    channel: str = "site-deploys"
class PhotonSettings(_Section):
    """photon: deployments (docs/photon.md)."""

    state_dir: Path = Path(".shipyard/photon")
    channel: str = "photon-deployments"
    haproxy: str = "haproxy"  # the local router's binary
    docker: str = "docker"
    # OTEL_EXPORTER_OTLP_ENDPOINT given to releases whose file names none.
    otlp_endpoint: str | None = None
    tick: float = 0.5  # seconds between gate checks during a rollout
    stop_timeout: float = 10.0  # SIGTERM -> SIGKILL for a release
    releases_kept: int = 5  # stopped releases (and their logs) kept per env


class AwsSettings(_Section):
    """How every tool talks to AWS (shipyard.aws). Unset fields fall back to boto3's own chain."""

    region: str | None = None
    # An S3/AWS API server to use instead of AWS (moto in tests); AWS_ENDPOINT_URL works too.
    endpoint_url: str | None = None
    retry_mode: str = "standard"
    max_attempts: int = 5
    connect_timeout: float = 5
    read_timeout: float = 60
    role_session_name: str = "shipyard"


class LimitsSettings(_Section):
    """Resource limits every tool applies to user input (shipyard.streams.bounded_reader)."""

    # A decompressed file larger than this is refused (64 GiB: far above any file we load whole).
    max_decompressed_bytes: int = Field(default=64 * 1024**3, gt=0)
    # Output bigger than this many times the compressed bytes is a decompression bomb (checked past
    # 16 MiB of output). gzip of real CSV/JSON expands 3-20x; gzip's own maximum is ~1032x.
    max_expansion_ratio: float = Field(default=200.0, gt=1)


def config_file() -> Path | None:
    """The shipyard.toml in force, if any."""
    named = os.environ.get("SHIPYARD_CONFIG")
    if named:
        return Path(named)
    here = Path("shipyard.toml")
    return here if here.exists() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SHIPYARD_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    # Notices go here (one JSON line each) when no Slack token is configured.
    outbox: Path = Path("outbox.jsonl")
    slack_bot_token: str | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "slack_bot_token")
    )
    slack_base_url: str = Field(
        default="https://slack.com/api/",
        validation_alias=AliasChoices("SHIPYARD_SLACK_BASE_URL", "slack_base_url"),
    )
    destinations: dict[str, DestinationSettings] = Field(default_factory=dict)
    propagator: PropagatorSettings = Field(default_factory=PropagatorSettings)
    jarvis: JarvisSettings = Field(default_factory=JarvisSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)
    pulse: PulseSettings = Field(default_factory=PulseSettings)
    site: SiteSettings = Field(default_factory=SiteSettings)
    photon: PhotonSettings = Field(default_factory=PhotonSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    custodian: CustodianSettings = Field(default_factory=CustodianSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    ami: AmiSettings = Field(default_factory=AmiSettings)

    def model_post_init(self, context: Any, /) -> None:
        # Every secret in force is masked by shipyard.redact wherever it (or a fragment) shows up.
        urls = [d.url for d in self.destinations.values()] + [self.pulse.database_url,
                                                              self.custodian.database_url]
        secrets = [url_password(u) for u in urls if u] + [self.slack_bot_token, self.jarvis.http_secret]
        secrets += [m.group(1) for u in urls if u for m in _QUERY_PASSWORD.finditer(u)]
        remember_secrets(secrets)

    @property
    def config_dir(self) -> Path:
        """Relative paths in shipyard.toml are relative to the file, else to the cwd."""
        f = config_file()
        return f.resolve().parent if f else Path.cwd()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, CheckedEnv(settings_cls)]
        f = config_file()
        if f is not None:
            sources.append(CheckedToml(settings_cls, toml_file=f))
        return tuple(sources)


@lru_cache(maxsize=1)
def _cached() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        env = "SHIPYARD_" + "__".join(str(p) for p in first["loc"]).upper()
        f = config_file()
        raise ConfigError(f"setting {where!r}: {first['msg']} (got {redact(repr(first.get('input')))})",
                          hint=f"fix {env}" + (f" or [{where.rsplit('.', 1)[0]}] in {f}" if f else ""),
                          key=where) from None


def forget_settings() -> None:
    """Drop the cached settings (and the secrets they registered with shipyard.redact); the next
    get_settings() reads env and files again."""
    _cached.cache_clear()
    forget_secrets()


def get_settings(*, fresh: bool = False) -> Settings:
    """The process's settings; `fresh=True` re-reads env and files (tests, reloads)."""
    if fresh:
        _cached.cache_clear()
    return _cached()
