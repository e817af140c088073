"""Staging: a batch's raw files as local paths the engines can read.

A LocalStore's own regular files are read in place; S3 objects are streamed to the batch's
temp folder, never held in memory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from shipyard.store import ObjectInfo, ObjectStore


def stage(raw: ObjectStore, infos: list[ObjectInfo], into: Path) -> dict[str, str]:
    """local path -> raw key."""
    out = {}
    for n, info in enumerate(infos):
        lp = raw.local_path(info.key)
        if lp is not None and lp.is_file():
            out[str(lp)] = info.key
            continue
        dst = into / f"{n:06d}-{info.key.rsplit('/', 1)[-1]}"
        with raw.open(info.key) as src, open(dst, "wb") as f:
            shutil.copyfileobj(src, f, 1 << 20)
        out[str(dst)] = info.key
    return out
