"""The local side: a built site folder walked into `LocalFile`s, confined to its root.

- A symlink whose target is outside the folder is refused (an InputError before anything is
  uploaded): a build must not publish ~/.aws/credentials because of a stray link.
- A symlink to a file inside the folder is published with the file's bytes; a symlink to a
  folder is skipped (its files are published where they really are; no loops).
- FIFOs, sockets and devices are skipped on purpose (reading a FIFO blocks forever) and listed.
- Precompression (`site.compress`): gzip with mtime 0 (the same bytes every run, so the ETag
  only moves when the file does) or brotli when the `brotli` package is installed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from shipyard.errors import ConfigError, InputError, NotFoundError
from shipyard.settings import SiteSettings
from shipyard.site.model import (
    COMPRESSIBLE_MIN_BYTES,
    LocalFile,
    compressible,
    excluded,
    headers_for,
    validate_key,
)

_CHUNK = 1 << 20
# Precompressed bodies are built in memory; larger files go up as they are.
MAX_COMPRESS_BYTES = 16 << 20


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_path(path: str | os.PathLike[str]) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def compress(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data, compresslevel=9, mtime=0)
    if encoding == "br":
        # optional dependency (pip install 'shipyard[site]'); imported only when asked for
        import brotli

        return brotli.compress(data, quality=11)
    raise ConfigError(f"unknown compression {encoding!r}", hint="site.compress: none, gzip or br")


def check_compression(settings: SiteSettings) -> None:
    if settings.compress == "br":
        try:
            import brotli  # noqa: F401  (optional dependency, checked before any upload)
        except ImportError:
            raise ConfigError("site.compress = 'br' needs the brotli package",
                              hint="pip install 'shipyard[site]' (or brotli), or use gzip") from None


def body_of(f: LocalFile) -> bytes:
    """The bytes to upload for `f` (compressed when its headers say so)."""
    data = Path(f.path).read_bytes()
    enc = f.headers.content_encoding
    return compress(data, enc) if enc else data


def _describe(path: str, key: str, size: int, settings: SiteSettings) -> LocalFile:
    headers = headers_for(key, settings)
    enc = settings.compress if settings.compress != "none" else None
    if enc and compressible(headers.content_type) and COMPRESSIBLE_MIN_BYTES <= size <= MAX_COMPRESS_BYTES:
        data = Path(path).read_bytes()
        packed = compress(data, enc)
        if len(packed) < len(data):
            return LocalFile(key, path, size, md5_bytes(data), md5_bytes(packed),
                             headers_for(key, settings, encoding=enc))
        digest = md5_bytes(data)
        return LocalFile(key, path, size, digest, digest, headers)
    digest = md5_path(path)
    return LocalFile(key, path, size, digest, digest, headers)


def check_folder(directory: str | os.PathLike[str]) -> Path:
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise NotFoundError(f"site folder {str(root)!r} does not exist or is not a folder",
                            hint="build the site first, or check the path (e.g. ./public, ./dist)")
    return root.resolve()


def scan(directory: str | os.PathLike[str], settings: SiteSettings, *,
         workers: int = 8) -> tuple[list[LocalFile], list[str]]:
    """(files to publish, keys skipped with why) of a built site folder. One readdir and one
    stat per file (os.scandir); the files are hashed on a few threads, since opening 5,000
    files is mostly waiting on the kernel, which releases the GIL."""
    root = check_folder(directory)
    check_compression(settings)
    found: list[tuple[str, str, int]] = []  # (path, key, size)
    skipped: list[str] = []
    folders = [(str(root), "")]
    while folders:
        folder, rel_dir = folders.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = rel_dir + entry.name
                if entry.is_symlink():
                    target = _check_link(Path(entry.path), root)
                    if target.is_dir():
                        skipped.append(f"{rel}/ (symlink to a folder)")
                    elif not target.is_file():
                        skipped.append(f"{rel} (symlink to a non-file)")
                    elif not excluded(rel, settings.exclude):
                        found.append((entry.path, validate_key(rel), target.stat().st_size))
                elif entry.is_dir(follow_symlinks=False):
                    folders.append((entry.path, rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    if not excluded(rel, settings.exclude):
                        found.append((entry.path, validate_key(rel), entry.stat(follow_symlinks=False).st_size))
                else:
                    skipped.append(f"{rel} (not a regular file: FIFO, socket or device)")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        files = list(pool.map(lambda item: _describe(*item, settings), found))
    return sorted(files, key=lambda f: f.key), sorted(skipped)


def _check_link(p: Path, root: Path) -> Path:
    target = p.resolve()
    if target != root and root not in target.parents:
        raise InputError(f"{p} is a symlink to {target}, outside the site folder",
                         hint="remove the link or copy the file into the folder; "
                              "shipyard never publishes what is outside the folder")
    return target
