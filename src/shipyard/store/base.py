"""The ObjectStore protocol shared by LocalStore and S3Store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol, runtime_checkable

from shipyard.errors import InputError


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime | None = None
    # S3's ETag (quotes stripped), or the MD5 of a local file's bytes: the same content
    # gives the same etag on both stores, which is what the propagator's ledger relies on.
    etag: str | None = None
    version_id: str | None = None
    # S3 event sequencer when known: orders events for one key.
    sequencer: str | None = None


@runtime_checkable
class ObjectStore(Protocol):
    """What every tool needs from a bucket. Keys are '/'-separated and relative to the store."""

    url: str

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects under `prefix`, in key order; `etag` may be None (call `head`)."""
        ...

    def list_dirs(self, prefix: str = "") -> list[str]:
        """The "folders" directly under `prefix` ('' or ending in '/'), each ending in '/'."""
        ...

    def head(self, key: str) -> ObjectInfo:
        """Size, etag and version of one object; NotFoundError if absent."""
        ...

    def exists(self, key: str) -> bool: ...

    def open(self, key: str) -> BinaryIO:
        """A streaming binary reader; the caller closes it."""
        ...

    def put(self, key: str, data: bytes | BinaryIO) -> None:
        """Write an object whole (readers never see a partial one)."""
        ...

    def move(self, src: str, dst: str) -> None:
        """Server-side copy then delete (S3), or a rename (local)."""
        ...

    def delete(self, key: str) -> None: ...

    def uri(self, key: str) -> str:
        """An address other engines understand: `s3://bucket/key` or an absolute path."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The file on this machine, when there is one (lets DuckDB read it directly)."""
        ...


def validate_key(key: str) -> str:
    """Refuse keys that could escape the store or confuse a filesystem."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise InputError(
            f"invalid object key {key!r}",
            hint="keys are relative, '/'-separated, without backslashes or NUL bytes",
        )
    parts = key.split("/")
    if any(p in ("..", ".") for p in parts):
        raise InputError(
            f"invalid object key {key!r}: '.' and '..' segments are not allowed",
            hint="drop the file under its real folder, without '..'",
        )
    return key
