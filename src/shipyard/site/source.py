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
import stat
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


def _describe(path: Path, root: Path, settings: SiteSettings) -> LocalFile:
    key = validate_key(path.relative_to(root).as_posix())
    size = path.stat().st_size
    headers = headers_for(key, settings)
    enc = settings.compress if settings.compress != "none" else None
    if enc and compressible(headers.content_type) and COMPRESSIBLE_MIN_BYTES <= size <= MAX_COMPRESS_BYTES:
        data = path.read_bytes()
        packed = compress(data, enc)
        if len(packed) < len(data):
            return LocalFile(key, str(path), size, md5_bytes(data), md5_bytes(packed),
                             headers_for(key, settings, encoding=enc))
        digest = md5_bytes(data)
        return LocalFile(key, str(path), size, digest, digest, headers)
    digest = md5_path(path)
    return LocalFile(key, str(path), size, digest, digest, headers)


def scan(directory: str | os.PathLike[str], settings: SiteSettings) -> tuple[list[LocalFile], list[str]]:
    """(files to publish, keys skipped with why) of a built site folder."""
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise NotFoundError(f"site folder {str(root)!r} does not exist or is not a folder",
                            hint="build the site first, or check the path (e.g. ./public, ./dist)")
    root = root.resolve()
    check_compression(settings)
    files: list[LocalFile] = []
    skipped: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for name in list(dirnames):
            p = here / name
            if p.is_symlink():
                _check_link(p, root)
                skipped.append(f"{p.relative_to(root).as_posix()}/ (symlink to a folder)")
                dirnames.remove(name)
        for name in filenames:
            p = here / name
            rel = p.relative_to(root).as_posix()
            if excluded(rel, settings.exclude):
                continue
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                target = _check_link(p, root)
                if not target.is_file():
                    skipped.append(f"{rel} (symlink to a non-file)")
                    continue
            elif not stat.S_ISREG(st.st_mode):
                skipped.append(f"{rel} (not a regular file: FIFO, socket or device)")
                continue
            files.append(_describe(p, root, settings))
    return sorted(files, key=lambda f: f.key), sorted(skipped)


def _check_link(p: Path, root: Path) -> Path:
    target = p.resolve()
    if target != root and root not in target.parents:
        raise InputError(f"{p} is a symlink to {target}, outside the site folder",
                         hint="remove the link or copy the file into the folder; "
                              "shipyard never publishes what is outside the folder")
    return target
