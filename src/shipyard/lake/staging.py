"""Staging: a batch's raw objects as local, plain (decompressed) JSON files DuckDB can read.

Objects are recognised by content, not by name (Firehose writes keys with no extension, and
`.gz` ones): gzip/bz2 by magic number, then JSON by its first character. Compressed objects
are decompressed once, streaming and bounded (`shipyard.streams.bounded_reader`: the size and
expansion-ratio caps of `[limits]`), so memory stays flat whatever the input. A LocalStore's
plain files are read in place, through a symlink named `<n>-00000.json` in the batch's folder:
DuckDB expands glob characters even in a list of paths (`a*.json`, `b[1].json`), so it only
ever sees names we made, and reads exactly the one file a key names.

Parts: DuckDB types a file (detection over every row) on one thread, and reads one file on one
thread, so an object is written as parts of about PART_BYTES (`<n>-<part>.json`, in order),
cut only between two top-level records (a line that ends with `}` followed by one that starts
with `{`: inside a JSON value a raw newline is never followed by `{` after a `}`), and a big
plain local file is copied so. Every part is typed (`then`, the detection) on the thread pool
as soon as it is written, while the next one is decompressed: zlib and DuckDB release the GIL.
typecheck names a problem's line in the object (it adds the lines of the parts before).

A raw object that cannot be read (not JSON, a decompression bomb, a corrupt gzip) is returned
in `unreadable` with the reason; the runner fails the ingest or skips it (on_bad_file), and it
stays in the raw zone either way.
"""

from __future__ import annotations

import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

from shipyard.errors import InputError
from shipyard.store import ObjectInfo, ObjectStore
from shipyard.streams import bounded_reader, sniff_compression

_JSON_START = (b"{", b"[")
_WHITESPACE = b" \t\r\n\xef\xbb\xbf"  # and a UTF-8 byte-order mark
PART_BYTES = 32 << 20
_BETWEEN_RECORDS = re.compile(rb"\}[ \t]*\r?\n[ \t]*\{")


@dataclass
class Staged:
    paths: dict[str, str] = field(default_factory=dict)       # local path (a part) -> raw key, in batch order
    unreadable: dict[str, str] = field(default_factory=dict)  # raw key -> why
    found: dict[str, Any] = field(default_factory=dict)       # local path -> what `then` gave


def _first_byte(f: BinaryIO) -> bytes:
    while chunk := f.read(1 << 12):
        rest = chunk.lstrip(_WHITESPACE)
        if rest:
            return rest[:1]
    return b""


def _write_parts(src: BinaryIO, head: bytes, base: Path, part_bytes: int,
                 done: Callable[[str], None]) -> list[str]:
    """Copy `head` then `src` into parts `<base>-<n>.json`; `done(path)` as each one closes."""
    paths: list[str] = []
    block = head
    out, size = None, 0
    while block:
        if out is None:
            paths.append(f"{base}-{len(paths):05d}.json")
            out, size = open(paths[-1], "wb"), 0
        if size + len(block) > part_bytes:
            m = _BETWEEN_RECORDS.search(block, max(0, part_bytes - size - 1))
            if m:
                out.write(block[:m.end() - 1])  # up to the '{' that starts the next record
                out.close()
                done(paths[-1])
                out, block = None, block[m.end() - 1:]
                continue
        out.write(block)
        size += len(block)
        block = src.read(1 << 20)
    if out is not None:
        out.close()
        done(paths[-1])
    return paths


def _stage_one(raw: ObjectStore, info: ObjectInfo, base: Path, part_bytes: int,
               done: Callable[[str], None]) -> tuple[list[str], str | None]:
    """(local paths of its parts, None) or ([], why it cannot be read)."""
    key = info.key
    with raw.open(key) as f:
        kind = sniff_compression(f.read(4))
    lp = raw.local_path(key)
    if kind is None and lp is not None and lp.is_file():
        with open(lp, "rb") as f:
            first = _first_byte(f)
            if first and first not in _JSON_START:
                return [], f"{key}: not JSON (it starts with {first!r}); kept in the raw zone"
            if lp.stat().st_size > 2 * part_bytes:  # big: copied in parts, read in parallel
                f.seek(0)
                return _write_parts(f, f.read(1 << 20), base, part_bytes, done), None
        dst = Path(f"{base}-00000.json")
        dst.symlink_to(lp.resolve())
        done(str(dst))
        return [str(dst)], None
    try:  # parts written before a refusal stay in the batch's temp folder, unused
        with bounded_reader(raw.open(key), name=key) as src:
            head = src.read(1 << 16)
            first = head.lstrip(_WHITESPACE)[:1]
            if first and first not in _JSON_START:
                return [], f"{key}: not JSON (it starts with {first!r}); kept in the raw zone"
            paths = _write_parts(src, head, base, part_bytes, done)
    except InputError as exc:
        return [], f"{exc.message}; kept in the raw zone"
    if not paths:  # an empty object: one empty part, a blank file
        Path(f"{base}-00000.json").touch()
        done(f"{base}-00000.json")
        paths = [f"{base}-00000.json"]
    return paths, None


def stage(raw: ObjectStore, infos: list[ObjectInfo], into: Path, threads: int = 2,
          then: Callable[[str], Any] | None = None, part_bytes: int = PART_BYTES) -> Staged:
    """Stage every object in parts; `then(part)` runs on the pool as each part is written.
    Biggest objects first, so the last worker does not start the biggest one alone."""
    out = Staged()
    futures: dict[str, Future] = {}
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        def done(path: str) -> None:
            if then is not None:
                futures[path] = pool.submit(then, path)

        order = sorted(range(len(infos)), key=lambda n: -infos[n].size)
        staged = dict(zip(order, pool.map(
            lambda n: _stage_one(raw, infos[n], into / f"{n:06d}", part_bytes, done), order)))
        for n, info in enumerate(infos):  # batch order: the first object wins the in-batch dedupe
            paths, why = staged[n]
            if why is None:
                for p in paths:
                    out.paths[p] = info.key
                    if then is not None:
                        out.found[p] = futures[p].result()
            else:
                out.unreadable[info.key] = why
    return out
