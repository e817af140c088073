"""Settings for every tool, in one place.

Sources, highest first: keyword arguments, environment variables (`SHIPYARD_` prefix, `__`
between levels, e.g. `SHIPYARD_DESTINATIONS__POSTGRES__URL`), then `shipyard.toml` (the file
named by `SHIPYARD_CONFIG`, else `./shipyard.toml` when it exists).

Every option is a declared field of a section model (`extra="forbid"`): a tool never reads
undeclared keys. A `shipyard.toml` key that is not declared is an error naming the file, the key
and the closest declared one; an unknown `SHIPYARD_*` variable is a warning with a did-you-mean
(and is otherwise ignored). docs/configuration.md lists the rules.
"""

from __future__ import annotations

import difflib
import logging
import os
import tomllib
import types
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from shipyard.errors import ConfigError, did_you_mean
from shipyard.redact import redact

log = logging.getLogger("shipyard.settings")

# SHIPYARD_* variables that are not settings (read directly, or by the test suite).
OTHER_ENV = {"SHIPYARD_CONFIG", "SHIPYARD_LAMBDA_SECRET", "SHIPYARD_LAKE_SPARK_PATHS", "SHIPYARD_LAKE_SPARK_S3_SCHEME",
             "SHIPYARD_LAKE_SPARK_MASTER", "SHIPYARD_LAKE_CRASH_AFTER_FILES", "SHIPYARD_RELIABILITY",
             "SHIPYARD_RELIABILITY_SEED"}
OTHER_ENV_PREFIXES = ("SHIPYARD_TEST_",)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @property
    def model_extra(self) -> dict[str, Any]:  # type: ignore[override]
        # TRANSITION ONLY: propagator/aws.py, propagator/events.py, lake/read.py and
        # pulse/service.py still read options through model_extra; their owners switch them to the
        # declared fields. Then this property goes (see docs/configuration.md).
        return self.model_dump()


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
    datasets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # DuckDB's memory_limit for lake work (e.g. "2GB"); DuckDB's default when unset.
    memory_limit: str | None = None


class PulseSettings(_Section):
    channel: str = "pulse-alerts"
    # SQLite file by default; a postgresql:// URL records history in PostgreSQL.
    database_url: str | None = None
    # Checks in flight at once; more wait for a slot.
    concurrency: int = 100
    retention_days: float = 35
    rollup_retention_days: float = 400


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
    aws: AwsSettings = Field(default_factory=AwsSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)

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
        sources: list[PydanticBaseSettingsSource] = [init_settings, _CheckedEnv(settings_cls)]
        f = config_file()
        if f is not None:
            sources.append(_CheckedToml(settings_cls, toml_file=f))
        return tuple(sources)


# -- unknown keys ------------------------------------------------------------------------------

def _shape(ann: Any) -> tuple[str, Any]:
    """("model", cls) | ("dict", value type) | ("any", None) | ("leaf", None) for an annotation."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "model", ann
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        return _shape(args[0]) if len(args) == 1 else ("leaf", None)
    if origin is dict:
        return "dict", typing.get_args(ann)[1]
    if ann is Any:
        return "any", None
    return "leaf", None


def unknown_keys(ann: Any, data: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], list[str]]]:
    """Every key of nested `data` that `ann` does not declare: (path, the declared choices)."""
    kind, inner = _shape(ann)
    if not isinstance(data, dict) or kind in ("any", "leaf"):
        return []
    out: list[tuple[tuple[str, ...], list[str]]] = []
    for key, value in data.items():
        if kind == "dict":
            out += unknown_keys(inner, value, path + (str(key),))
            continue
        fields = inner.model_fields
        names = {n: f for n, f in fields.items()}
        for n, f in fields.items():  # top-level aliases (SLACK_BOT_TOKEN)
            for alias in getattr(f.validation_alias, "choices", None) or []:
                names.setdefault(str(alias).lower(), f)
        field = names.get(str(key).lower() if inner is Settings else str(key))
        if field is None:
            out.append((path + (str(key),), list(fields)))
        else:
            out += unknown_keys(field.annotation, value, path + (str(key),))
    return out


_warned_env: set[str] = set()


class _CheckedEnv(EnvSettingsSource):
    """The environment source, minus the SHIPYARD_* variables no field declares (a warning each,
    with a did-you-mean, once per process; they are otherwise ignored)."""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        for path, choices in unknown_keys(Settings, data):
            parent = data
            for part in path[:-1]:
                parent = parent[part]
            parent.pop(path[-1], None)
            _warn_env("SHIPYARD_" + "__".join(path).upper(), path[:-1], path[-1], choices)
        for var in os.environ:  # top-level names no field matches never reach `data`
            if not var.startswith("SHIPYARD_") or var in OTHER_ENV or var.startswith(OTHER_ENV_PREFIXES):
                continue
            top = var[len("SHIPYARD_"):].split("__", 1)[0].lower()
            if top not in Settings.model_fields:
                _warn_env(var, (), top, list(Settings.model_fields))
        return data


def _warn_env(var: str, parent: tuple[str, ...], name: str, choices: list[str]) -> None:
    if var not in _warned_env:
        _warned_env.add(var)
        close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
        mean = f": did you mean SHIPYARD_{'__'.join((*parent, close[0])).upper()}?" if close else ""
        log.warning("unknown setting %s is ignored%s", var, mean)


class _CheckedToml(TomlConfigSettingsSource):
    """shipyard.toml; a key no field declares is a ConfigError naming the file and the key."""

    def __init__(self, settings_cls: type[BaseSettings], toml_file: Path) -> None:
        self.file = toml_file
        try:
            super().__init__(settings_cls, toml_file=toml_file)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{toml_file}: not valid TOML ({exc})", hint="fix the file's syntax") from None

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        bad = unknown_keys(Settings, data)
        if bad:
            path, choices = bad[0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            mean = did_you_mean(path[-1], choices)
            raise ConfigError(
                f"{self.file}: unknown key {'.'.join(path)!r}{more}" + (f": {mean}" if mean else ""),
                hint="the settings and their sections are listed in docs/configuration.md",
                file=str(self.file), key=".".join(path))
        return data


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
    """Drop the cached settings; the next get_settings() reads env and files again."""
    _cached.cache_clear()


def get_settings(*, fresh: bool = False) -> Settings:
    """The process's settings; `fresh=True` re-reads env and files (tests, reloads)."""
    if fresh:
        _cached.cache_clear()
    return _cached()
