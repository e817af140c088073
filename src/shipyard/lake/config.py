"""Dataset declarations: `[lake.datasets.<name>]` in shipyard.toml, validated here.

settings.LakeSettings declares the lake's own options; each dataset table is validated by this
model (extra="forbid"), whose errors become one message naming the dataset and key, with a
did-you-mean for a misspelt key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shipyard.errors import ConfigError, NotFoundError, did_you_mean
from shipyard.settings import Settings, get_settings
from shipyard.store import is_s3_url

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BUCKET = re.compile(r"^bucket\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,\s*(\d+)\s*\)$")


@dataclass(frozen=True)
class Partition:
    """One partition column: how its value is derived from a record."""

    name: str  # the folder's key: dt=..., hour=..., <field>=..., <field>_bucket=...
    kind: str  # "dt" | "hour" | "field" | "bucket"
    field: str | None = None
    buckets: int | None = None

    @property
    def spec(self) -> str:
        if self.kind == "bucket":
            return f"bucket({self.field}, {self.buckets})"
        return self.name


def parse_partition(spec: str) -> Partition:
    s = spec.strip()
    if s in ("dt", "hour"):
        return Partition(s, s)
    m = _BUCKET.match(s)
    if m:
        n = int(m.group(2))
        if not 1 <= n <= 4096:
            raise ValueError(f"bucket count must be 1..4096, got {n}")
        return Partition(f"{m.group(1)}_bucket", "bucket", m.group(1), n)
    if _IDENT.match(s):
        return Partition(s, "field", s)
    raise ValueError(
        f"{spec!r} is not a partition: use dt, hour, a field name, or bucket(field, N)"
    )


class DatasetConfig(BaseModel):
    """One `[lake.datasets.<name>]` table."""

    model_config = ConfigDict(extra="forbid")

    raw: str = Field(description="raw zone: folder (relative to shipyard.toml) or s3:// URL")
    lake: str = Field(description="lake: folder (relative to shipyard.toml) or s3:// URL")
    id: list[str] = Field(min_length=1, description="dedupe key (lake column names)")
    time: str = Field(description="event-time column (lake name)")
    partition_by: list[str] = Field(default_factory=lambda: ["dt"])
    # Raw JSON key -> SQL type, overriding inference (e.g. amount = "DECIMAL(12,2)").
    columns: dict[str, str] = Field(default_factory=dict)
    # Raw JSON key -> lake column name.
    rename: dict[str, str] = Field(default_factory=dict)
    # Sort rows inside each file (lake names): clusters a user's rows for row-group pruning.
    sort_by: list[str] = Field(default_factory=list)
    # Parquet codec: snappy (the default, as Athena/Spark expect) or zstd (smaller files).
    compression: str = "snappy"
    # Keep a Glue table (Athena) in step after every commit: this database, this table name.
    glue_database: str | None = None
    glue_table: str | None = None
    # Numeric event times: seconds or milliseconds since the epoch.
    time_unit: str | None = None
    # Delete raw files this many days after they were ingested (None: keep forever).
    raw_retention_days: int | None = Field(default=None, ge=0)
    # Target Parquet file size; DuckDB rolls over to a new file past it.
    file_size_mb: int = Field(default=128, ge=1, le=4096)
    # Raw bytes per transaction: bounds temp disk and what a crash can cost.
    batch_mb: int = Field(default=1024, ge=1)
    # A raw file that cannot be typed: "fail" the ingest (default) or "skip" it (recorded).
    on_bad_file: str = "fail"

    @field_validator("id", "sort_by")
    @classmethod
    def _idents(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _IDENT.match(name):
                raise ValueError(f"{name!r} is not a column name (letters, digits, _)")
        return v

    @field_validator("time")
    @classmethod
    def _ident(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise ValueError(f"{v!r} is not a column name (letters, digits, _)")
        return v

    @field_validator("partition_by")
    @classmethod
    def _partitions(cls, v: list[str]) -> list[str]:
        names = [parse_partition(p).name for p in v]
        if len(set(names)) != len(names):
            raise ValueError(f"partition columns repeat: {names}")
        return v

    @field_validator("rename")
    @classmethod
    def _renames(cls, v: dict[str, str]) -> dict[str, str]:
        for src, dst in v.items():
            if not _IDENT.match(dst):
                raise ValueError(f"rename {src!r} -> {dst!r}: not a column name")
        if len(set(v.values())) != len(v):
            raise ValueError("two raw fields renamed to the same column")
        return v

    @field_validator("columns")
    @classmethod
    def _types(cls, v: dict[str, str]) -> dict[str, str]:
        for name, t in v.items():
            try:
                duckdb.sqltype(t)
            except duckdb.Error:
                raise ValueError(f"{name!r}: {t!r} is not a SQL type (e.g. VARCHAR, BIGINT, DOUBLE, "
                                 "TIMESTAMP, DECIMAL(12,2))") from None
        return v

    @field_validator("time_unit")
    @classmethod
    def _unit(cls, v: str | None) -> str | None:
        if v not in (None, "s", "ms"):
            raise ValueError("time_unit must be 's' or 'ms' (numeric epoch times)")
        return v

    @field_validator("compression")
    @classmethod
    def _codec(cls, v: str) -> str:
        if v not in ("snappy", "zstd"):
            raise ValueError("compression must be 'snappy' or 'zstd'")
        return v

    @field_validator("on_bad_file")
    @classmethod
    def _bad(cls, v: str) -> str:
        if v not in ("fail", "skip"):
            raise ValueError("on_bad_file must be 'fail' or 'skip'")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "DatasetConfig":
        parts = self.partitions
        for p in parts:
            if p.name in self.id and p.kind != "field":
                raise ValueError(f"partition {p.name!r} collides with an id column")
        return self

    @property
    def partitions(self) -> list[Partition]:
        return [parse_partition(p) for p in self.partition_by]


@dataclass(frozen=True)
class Dataset:
    """A validated dataset with its stores resolved to URLs."""

    name: str
    config: DatasetConfig
    raw_url: str
    lake_url: str

    @property
    def partitions(self) -> list[Partition]:
        return self.config.partitions


def _resolve(url: str, base: Path) -> str:
    if is_s3_url(url):
        return url.rstrip("/")
    p = Path(url).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _format_errors(name: str, exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(table)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            near = did_you_mean(str(e["loc"][-1]), DatasetConfig.model_fields)
            msg = "unknown key" + (f" ({near})" if near else "")
        parts.append(f"lake.datasets.{name}.{loc}: {msg}")
    return "; ".join(parts)


_KNOWN = ", ".join(DatasetConfig.model_fields)


def validate_dataset(name: str, raw: Any, base: Path) -> Dataset:
    if not _IDENT.match(name):
        raise ConfigError(
            f"lake dataset name {name!r} is not an identifier",
            hint="use letters, digits and _ (the name becomes a SQL view)",
        )
    if not isinstance(raw, dict):
        raise ConfigError(f"lake.datasets.{name} must be a table", hint="[lake.datasets.NAME] raw=... lake=...")
    try:
        cfg = DatasetConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            f"invalid lake dataset {name!r}: {_format_errors(name, exc)}",
            hint=f"keys: {_KNOWN} (see docs/lake.md)",
        ) from None
    return Dataset(name, cfg, _resolve(cfg.raw, base), _resolve(cfg.lake, base))


def load_datasets(settings: Settings | None = None) -> dict[str, Dataset]:
    s = settings or get_settings()
    return {n: validate_dataset(n, raw, s.config_dir) for n, raw in s.lake.datasets.items()}


def get_dataset(name: str, settings: Settings | None = None) -> Dataset:
    s = settings or get_settings()
    datasets = s.lake.datasets
    if name not in datasets:
        hint = (did_you_mean(name, datasets) or
                "declare it in shipyard.toml as [lake.datasets.NAME] (see docs/lake.md)")
        known = ", ".join(sorted(datasets)) or "none"
        raise NotFoundError(f"no lake dataset {name!r} (declared: {known})", hint=hint)
    return validate_dataset(name, datasets[name], s.config_dir)
