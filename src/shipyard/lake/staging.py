"""Staging: a batch's raw objects as local, plain (decompressed) JSON files DuckDB can read.

Objects are recognised by content, not by name (Firehose writes keys with no extension, and
`.gz` ones): gzip/bz2 by magic number, then JSON by its first character. Compressed objects
are decompressed once, streaming and bounded (`shipyard.streams.bounded_reader`: the size and
expansion-ratio caps of `[limits]`), so memory stays flat whatever the input and DuckDB reads
plain files in parallel in both of its passes (typing, then writing); a LocalStore's plain
files are read in place, through a symlink named `<n>.json` in the batch's folder: DuckDB
expands glob characters even in a list of paths (`a*.json`, `b[1].json`), so it only ever sees
names we made, and reads exactly the one file a key names. Files are staged on a thread pool:
zlib releases the GIL. `then` (the type detection) runs on each file in the same worker right
after it is staged, so one file's detection overlaps the next one's decompression.

A raw object that cannot be read (not JSON, a decompression bomb, a corrupt gzip) is returned
in `unreadable` with the reason; the runner fails the ingest or skips it (on_bad_file), and it
stays in the raw zone either way.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

from shipyard.errors import InputError
from shipyard.store import ObjectInfo, ObjectStore
from shipyard.streams import bounded_reader, sniff_compression

_JSON_START = (b"{", b"[")
_WHITESPACE = b" \t\r\n\xef\xbb\xbf"  # and a UTF-8 byte-order mark


@dataclass
class Staged:
    paths: dict[str, str] = field(default_factory=dict)       # local path -> raw key, in batch order
    unreadable: dict[str, str] = field(default_factory=dict)  # raw key -> why
    found: dict[str, Any] = field(default_factory=dict)       # local path -> what `then` gave


def _first_byte(f: BinaryIO) -> bytes:
    while chunk := f.read(1 << 12):
        rest = chunk.lstrip(_WHITESPACE)
        if rest:
            return rest[:1]
    return b""


def _stage_one(raw: ObjectStore, info: ObjectInfo, dst: Path) -> tuple[str | None, str | None]:
    """(local path, None) or (None, why it cannot be read)."""
    key = info.key
    with raw.open(key) as f:
        kind = sniff_compression(f.read(4))
    lp = raw.local_path(key)
    if kind is None and lp is not None and lp.is_file():
        with open(lp, "rb") as f:
            first = _first_byte(f)
        if first and first not in _JSON_START:
            return None, f"{key}: not JSON (it starts with {first!r}); kept in the raw zone"
        dst.symlink_to(lp.resolve())
        return str(dst), None
    try:
        with bounded_reader(raw.open(key), name=key) as src, open(dst, "wb") as out:
            head = src.read(1 << 16)
            first = head.lstrip(_WHITESPACE)[:1]
            if first and first not in _JSON_START:
                return None, f"{key}: not JSON (it starts with {first!r}); kept in the raw zone"
            out.write(head)
            shutil.copyfileobj(src, out, 1 << 20)
    except InputError as exc:
        dst.unlink(missing_ok=True)
        return None, f"{exc.message}; kept in the raw zone"
    return str(dst), None


def stage(raw: ObjectStore, infos: list[ObjectInfo], into: Path, threads: int = 2,
          then: Callable[[str], Any] | None = None) -> Staged:
    """Stage every object; `then(path)` runs on each staged file in the same worker thread.
    Biggest objects first, so the last worker does not start the biggest file alone."""
    out = Staged()

    def one(n: int) -> tuple[str | None, str | None, Any]:
        path, why = _stage_one(raw, infos[n], into / f"{n:06d}.json")
        return path, why, (then(path) if then is not None and path is not None else None)

    order = sorted(range(len(infos)), key=lambda n: -infos[n].size)
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(infos)))) as pool:
        done = dict(zip(order, pool.map(one, order)))
    for n, info in enumerate(infos):  # batch order: the first file wins the in-batch dedupe
        path, why, found = done[n]
        if path is not None:
            out.paths[path] = info.key
            out.found[path] = found
        else:
            out.unreadable[info.key] = why or f"{info.key}: unreadable"
    return out
