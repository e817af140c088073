"""Engines run plans against a destination. Registry: `ENGINES`, dialect name -> factory.

`open_engine(name, settings)` resolves `destination=<name>` from settings
(`SHIPYARD_DESTINATIONS__<NAME>__URL`, or `[destinations.<name>]` in shipyard.toml);
`destination=duckdb` needs no configuration: `./warehouse.duckdb` (beside shipyard.toml).
Each factory imports its driver when first used: start-up cost (a Lambda loading into
PostgreSQL never imports pymysql).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from shipyard.errors import ConfigError
from shipyard.propagator.dialects import Dialect, get_dialect
from shipyard.propagator.engines.base import Engine
from shipyard.settings import DestinationSettings, Settings


def _duckdb(url: str, dialect: Dialect, name: str, settings: Settings) -> Engine:
    from shipyard.propagator.engines.duckdb import DuckDBEngine  # start-up cost: the driver

    path = url.removeprefix("duckdb:///").removeprefix("duckdb://")
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = Path(settings.config_dir) / p
    return DuckDBEngine(p, dialect, name=name)


def _postgres(url: str, dialect: Dialect, name: str, settings: Settings) -> Engine:
    from shipyard.propagator.engines.postgres import PostgresEngine  # start-up cost: the driver

    return PostgresEngine(url, dialect, name=name)


def _mysql(url: str, dialect: Dialect, name: str, settings: Settings) -> Engine:
    from shipyard.propagator.engines.mysql import MySQLEngine  # start-up cost: the driver

    return MySQLEngine(url, dialect, name=name)


ENGINES: dict[str, Callable[[str, Dialect, str, Settings], Engine]] = {
    "duckdb": _duckdb,
    "postgres": _postgres,
    "redshift": _postgres,  # Redshift speaks PostgreSQL's protocol; its dialect changes the SQL
    "mysql": _mysql,
}


def destination(name: str, settings: Settings) -> tuple[Dialect, str, DestinationSettings | None]:
    """(dialect, url, the destination's settings) for `destination=<name>`."""
    cfg = settings.destinations.get(name)
    if cfg is None and name == "duckdb":
        return get_dialect("duckdb"), "warehouse.duckdb", None
    if cfg is None:
        known = ", ".join(sorted({*settings.destinations, "duckdb"}))
        raise ConfigError(
            f"destination {name!r} is not configured (configured: {known})",
            hint=f"set SHIPYARD_DESTINATIONS__{name.upper()}__URL (or [destinations.{name}] url = ... in "
            "shipyard.toml), or fix destination= in the key",
        )
    dialect = get_dialect(cfg.type or name)
    url = cfg.url or ("warehouse.duckdb" if dialect.name == "duckdb" else None)
    if not url:
        raise ConfigError(f"destination {name!r} has no url",
                          hint=f"set SHIPYARD_DESTINATIONS__{name.upper()}__URL")
    return dialect, url, cfg


def open_engine(name: str, settings: Settings) -> Engine:
    dialect, url, _ = destination(name, settings)
    return ENGINES[dialect.name](url, dialect, name, settings)
