"""Settings for every tool, in one place.

Sources, highest first: keyword arguments, environment variables (`SHIPYARD_` prefix, `__`
between levels, e.g. `SHIPYARD_DESTINATIONS__POSTGRES__URL`), then `shipyard.toml` (the file
named by `SHIPYARD_CONFIG`, else `./shipyard.toml` when it exists).

Each tool owns a section. Sections accept extra keys so a tool can grow options without a
change here; a tool validates its own section with its own model where it needs more.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow")


class DestinationSettings(_Section):
    """One warehouse the propagator can load into; the key's `destination=<name>` picks it."""

    url: str | None = None
    # The dialect; defaults to the destination's name (postgres, duckdb, mysql, redshift).
    type: str | None = None
    # Redshift: the role COPY assumes to read from S3.
    iam_role: str | None = None


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


class JarvisSettings(_Section):
    error_channel: str = "jarvis-error-notifications"
    # Shared secret for `shipyard jarvis serve` (header X-Shipyard-Secret).
    http_secret: str | None = None


class LakeSettings(_Section):
    datasets: dict[str, dict[str, Any]] = Field(default_factory=dict)


class PulseSettings(_Section):
    channel: str = "pulse-alerts"
    # SQLite file by default; a postgresql:// URL records history in PostgreSQL.
    database_url: str | None = None


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
    aws: AwsSettings = Field(default_factory=AwsSettings)

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
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        f = config_file()
        if f is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=f))
        return tuple(sources)


@lru_cache(maxsize=1)
def _cached() -> Settings:
    return Settings()


def get_settings(*, fresh: bool = False) -> Settings:
    """The process's settings; `fresh=True` re-reads env and files (tests, reloads)."""
    if fresh:
        _cached.cache_clear()
    return _cached()
