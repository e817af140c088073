"""The lake's metadata: one JSON object, `_shipyard/manifest.json`, written last.

It lists the live Parquet files (with partition, rows, bytes), the kept schema, and the raw
files already ingested (the checkpoint). Data files are published first under new, unique
names; the manifest put is the commit: until it lands, no reader that goes through the
manifest (query, stats, compact, ddl's partitions) sees the new files, and a crash before it
leaves the lake exactly as it was. Files of a crashed run are orphans (not in the manifest) and
the next writer deletes them. Both stores make a single put atomic (LocalStore: rename; S3:
an object is visible only when whole).

One writer per dataset at a time: the manifest version is checked again just before the
commit, so a second writer that raced us fails instead of losing our files.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from shipyard.errors import ConfigError, InputError, NotFoundError, TransientError
from shipyard.store import ObjectStore

MANIFEST_KEY = "_shipyard/manifest.json"
META_PREFIX = "_shipyard/"
# Where an engine writing straight into the store (Spark on a cluster) puts a batch's files
# before publishing; '_' makes Hive, Spark and Athena skip it.
STAGING_PREFIX = "_shipyard/staging/"
FORMAT = 1


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_txn() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


@dataclass
class Manifest:
    dataset: str
    version: int = 0
    schema: dict[str, Any] = field(default_factory=dict)
    partition_by: list[str] = field(default_factory=list)
    id: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    ingested: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    updated: str | None = None

    # -- reading ---------------------------------------------------------------------------
    @property
    def keys(self) -> set[str]:
        return {f["key"] for f in self.files}

    def files_in(self, partitions: set[tuple[str, ...]], names: list[str]) -> list[dict[str, Any]]:
        return [f for f in self.files
                if tuple(f["partition"].get(n) for n in names) in partitions]

    def is_done(self, key: str, size: int, etag: str | None = None) -> bool:
        """Already ingested or rejected as this exact object: same size, and same ETag where the
        store lists one (S3). A rewritten raw file is read again; its old events are then
        dropped as duplicates."""
        done = self.ingested.get(key) or self.rejected.get(key)
        if not done or done.get("size") != size:
            return False
        return etag is None or done.get("etag") is None or done["etag"] == etag

    @property
    def raw_bytes(self) -> int:
        return sum(v.get("size", 0) for v in self.ingested.values())

    @property
    def lake_bytes(self) -> int:
        return sum(f["bytes"] for f in self.files)

    @property
    def rows(self) -> int:
        return sum(f["rows"] for f in self.files)

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT, "dataset": self.dataset, "version": self.version,
            "updated": self.updated, "schema": self.schema, "partition_by": self.partition_by,
            "id": self.id, "files": self.files, "ingested": self.ingested,
            "rejected": self.rejected, "history": self.history[-50:],
        }
        return json.dumps(body, indent=1, sort_keys=False).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> "Manifest":
        try:
            d = json.loads(data)
            if d.get("format") != FORMAT:
                raise ValueError(f"format {d.get('format')!r}, expected {FORMAT}")
            return cls(
                dataset=d["dataset"], version=int(d["version"]), schema=d["schema"],
                partition_by=d["partition_by"], id=d["id"], files=d["files"],
                ingested=d["ingested"], rejected=d.get("rejected", {}),
                history=d.get("history", []), updated=d.get("updated"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"the lake's manifest {where} is unreadable: {exc}",
                hint="restore it from the bucket's versioning or move the lake aside and re-ingest",
            ) from None


def read_manifest(store: ObjectStore, dataset: str) -> Manifest:
    """The committed manifest, or an empty one for a new lake."""
    try:
        with store.open(MANIFEST_KEY) as f:
            data = f.read()
    except NotFoundError:
        return Manifest(dataset=dataset)
    return Manifest.from_json(data, store.uri(MANIFEST_KEY))


def check_compatible(m: Manifest, partition_by: list[str], id_cols: list[str], dataset: str) -> None:
    """A lake's layout is fixed once written: changing it would mix layouts silently."""
    if m.version == 0:
        return
    if m.partition_by != partition_by:
        raise ConfigError(
            f"lake {dataset!r} is partitioned by {m.partition_by}, the config says {partition_by}",
            hint="keep partition_by as it was, or point `lake` at a new folder and re-ingest",
        )
    if m.id != id_cols:
        raise ConfigError(
            f"lake {dataset!r} dedupes on {m.id}, the config says {id_cols}",
            hint="keep id as it was, or point `lake` at a new folder and re-ingest",
        )


def commit(store: ObjectStore, m: Manifest, *, expected_version: int) -> None:
    """Publish `m` as the next version: the one step that makes a write visible."""
    current = read_manifest(store, m.dataset)
    if current.version != expected_version:
        raise TransientError(
            f"lake {m.dataset!r} changed while we wrote it (version {expected_version} -> "
            f"{current.version}); nothing of ours was committed",
            hint="run one writer (ingest or compact) per dataset at a time; run it again",
        )
    m.version = expected_version + 1
    m.updated = now_iso()
    store.put(MANIFEST_KEY, m.to_json())


def remove_orphans(store: ObjectStore, m: Manifest) -> list[str]:
    """Delete data files no manifest lists: leftovers of a run that crashed before its commit."""
    live = m.keys
    gone = []
    for info in store.list(STAGING_PREFIX):
        store.delete(info.key)
        gone.append(info.key)
    for info in store.list(""):
        k = info.key
        if k.startswith(META_PREFIX) or not k.endswith(".parquet"):
            continue
        if k.rsplit("/", 1)[-1].startswith("part-") and k not in live:
            store.delete(k)
            gone.append(k)
    return gone
