"""The Target protocol: where a site is published. One implementation per backend.

Keys are relative to the target's root (`s3://bucket/prefix` or a folder) and '/'-separated;
release manifests live under `.shipyard/releases/` of that root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

from shipyard.site.model import Headers, LocalFile, ReleaseFile, RemoteObject


@dataclass(frozen=True)
class Stored:
    """What a write left: the version to restore later, and the object's ETag."""

    version: str | None
    etag: str | None


@dataclass
class Served:
    """One object as `site serve` answers it."""

    headers: Headers
    chunks: Iterator[bytes]
    size: int | None = None


class Target(Protocol):
    url: str

    def check(self) -> None:
        """Fail with a clear error when the bucket or folder cannot be used (before any change)."""
        ...

    def list(self, prefix: str = "", exclude: tuple[str, ...] = ()) -> dict[str, RemoteObject]:
        """Objects under `prefix` but not under `exclude` (root-relative prefixes such as
        `previews/`); multipart objects carry their stored content hash."""
        ...

    def put(self, key: str, f: LocalFile) -> Stored:
        """Publish `f` at `key` with its headers."""
        ...

    def delete(self, keys: list[str]) -> None: ...

    def restore(self, key: str, rf: ReleaseFile) -> Stored:
        """Make `key` the version `rf` recorded again."""
        ...

    def can_restore(self) -> str | None:
        """None when `restore` works, else why not (an S3 bucket without versioning)."""
        ...

    def read_text(self, key: str) -> str | None: ...

    def write_text(self, key: str, text: str) -> None: ...

    def list_text(self, prefix: str) -> list[str]:
        """Keys of the JSON documents (release manifests) directly under `prefix`."""
        ...

    def get(self, key: str) -> Served | None:
        """The object for `site serve`, or None."""
        ...
