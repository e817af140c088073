"""What an engine gets and gives back; the protocol each backend implements.

An engine does the heavy step of one batch: read the staged raw files with exactly the kept
types, derive the partition columns, drop duplicates within the batch and against the
partitions the batch touches, and write Parquet. Typing, staging, publishing and the manifest
commit belong to the runner (ingest.py), so every engine writes the same lake and follows the
same crash rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shipyard.lake.config import Dataset
from shipyard.lake.manifest import Manifest
from shipyard.store import ObjectStore


@dataclass
class Batch:
    """Staged raw files with their exact types, and where to write."""

    ds: Dataset
    txn: str
    paths: list[str]            # local raw files (plain JSON: staging decompressed them)
    raw_schema: dict[str, Any]  # raw JSON key -> type (merged)
    lake: ObjectStore
    manifest: Manifest
    outdir: Path
    workdir: Path
    raw_uris: list[str] = field(default_factory=list)  # the same files as a cluster sees them
    # Set by an engine that wrote into the lake's store (Spark on a cluster) instead of
    # outdir: the hidden prefix to publish from.
    staged_prefix: str | None = None
    # Set when the types come from samples (strict.py): what the one strict read must give,
    # NULL-only keys included. None: `paths` were typed over every row.
    strict_types: dict[str, Any] | None = None
    joined: Any = None  # with strict_types: the batch as one file (strict.Joined)

    @property
    def lake_types(self) -> dict[str, Any]:
        """Lake column name -> type (renames applied)."""
        rename = self.ds.config.rename
        return {rename.get(r, r): t for r, t in self.raw_schema.items()}


@dataclass
class Written:
    """Row counts of one batch: read, left after the in-batch dedupe (-1: not counted apart),
    written (-1: unknown, counted from the files' footers at publish time)."""

    read: int
    unique: int
    written: int
    files: dict[str, int] = field(default_factory=dict)  # local file -> rows, when the engine knows
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step, for the bench


class Engine(Protocol):
    name: str

    def write(self, con: Any, b: Batch) -> Written:
        """Write the batch's Parquet into b.outdir (or b.staged_prefix); `con` is the runner's
        DuckDB connection (typing ran on it)."""
        ...

    def close(self) -> None:
        ...


def unused_name(base: str, taken: set[str]) -> str:
    """A helper column name that no raw field uses (a raw field may be named `filename`)."""
    name = base
    while name in taken:
        name = "_" + name
    return name
