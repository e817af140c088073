"""When and in which order pending files are taken: pure decisions, time passed in."""

from __future__ import annotations

from datetime import datetime

from shipyard.propagator.layout import ParsedKey
from shipyard.store import ObjectInfo

# Within one table: schema files first (create, then changes), then data, each in key order.
RANK = {"create": 0, "alter": 1, "load": 2, "upsert": 2}


def order(pk: ParsedKey) -> tuple[str, int, str]:
    """Processing order: per table, creates, then updates, then data files, each in key order."""
    return (pk.table_prefix, RANK[str(pk.operation)], pk.key)


def settling_seconds(obj: ObjectInfo, now: datetime, settle: float) -> float:
    """How long until a file last modified at `obj.modified` has been still for `settle` seconds
    (0: it is ready). Its size and mtime unchanged that long means nobody is writing it."""
    if obj.modified is None or settle <= 0:
        return 0.0
    return max(0.0, settle - (now - obj.modified).total_seconds())
