"""DuckDB's errors during a write, as the project's (nothing is committed either way)."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import duckdb

from shipyard.errors import InputError, ShipyardError
from shipyard.lake.config import Dataset

T = TypeVar("T")


def mapped(ds: Dataset, fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except duckdb.OutOfMemoryException as exc:
        raise ShipyardError(
            f"dataset {ds.name!r}: DuckDB ran out of memory: {str(exc).splitlines()[0]}",
            hint="raise [lake] memory_limit (SHIPYARD_LAKE__MEMORY_LIMIT) or lower "
            f"lake.datasets.{ds.name}.batch_mb; nothing was committed",
        ) from None
    except duckdb.Error as exc:
        raise InputError(f"dataset {ds.name!r}: the write failed: {str(exc).splitlines()[0]}",
                         hint="nothing was committed; run with --debug for details") from None
