"""Engines by name: `shipyard lake ingest --engine NAME`."""

from __future__ import annotations

from typing import Callable

from shipyard.settings import LakeSettings

from shipyard.lake.engines.base import Batch, Engine, Written
from shipyard.lake.engines.duck import DuckDBEngine
from shipyard.lake.engines.spark import SparkEngine

ENGINES: dict[str, Callable[[LakeSettings], Engine]] = {"duckdb": DuckDBEngine, "spark": SparkEngine}

__all__ = ["ENGINES", "Batch", "Engine", "Written"]
