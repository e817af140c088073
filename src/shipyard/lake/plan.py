"""The ingest plan: which raw files are new, in which batches (pure: no I/O).

`plan_ingest` turns the raw zone's listing and the committed manifest into batches of at most
`batch_mb` raw bytes, one transaction each. `shipyard lake ingest --dry-run` prints it, with
the partitions and row counts the runner previews from the files (ingest.dry_run).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard.lake.config import Dataset
from shipyard.lake.manifest import Manifest
from shipyard.lake.rawfiles import is_raw
from shipyard.store import ObjectInfo


@dataclass
class IngestPlan:
    dataset: str
    batches: list[list[ObjectInfo]] = field(default_factory=list)
    already_done: int = 0        # raw files the manifest lists as ingested or rejected
    not_raw: list[str] = field(default_factory=list)  # keys that are not raw events

    @property
    def files(self) -> list[ObjectInfo]:
        return [i for b in self.batches for i in b]

    @property
    def raw_bytes(self) -> int:
        return sum(i.size for i in self.files)


def batches(infos: list[ObjectInfo], limit: int) -> list[list[ObjectInfo]]:
    """Consecutive groups of at most `limit` bytes (a bigger file is a batch of its own)."""
    out: list[list[ObjectInfo]] = []
    cur: list[ObjectInfo] = []
    size = 0
    for i in infos:
        if cur and size + i.size > limit:
            out.append(cur)
            cur, size = [], 0
        cur.append(i)
        size += i.size
    if cur:
        out.append(cur)
    return out


def plan_ingest(ds: Dataset, m: Manifest, listing: list[ObjectInfo]) -> IngestPlan:
    """New raw files, oldest key first, batched by `batch_mb`."""
    plan = IngestPlan(ds.name)
    pending = []
    for i in sorted(listing, key=lambda i: i.key):
        if not is_raw(i.key):
            plan.not_raw.append(i.key)
        elif m.is_done(i.key, i.size, i.etag):
            plan.already_done += 1
        else:
            pending.append(i)
    plan.batches = batches(pending, ds.config.batch_mb << 20)
    return plan
