"""LocalStore: a folder on disk as the bucket (the embedded default).

Confined: nothing is read or written outside `root`. Paths are resolved with symlinks followed
and then checked to be under the root (a symlink out of the bucket is refused for reading and
never written through); symlinked folders are not walked. Only regular files are objects: a
FIFO, socket or device is skipped by `list` with one warning and refused by `open`/`head`,
never opened in a way that blocks. Keys are literal paths: no glob or pattern meaning.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from shipyard.errors import InputError, NotFoundError
from shipyard.store.base import ObjectInfo, validate_key

log = logging.getLogger("shipyard.store")

_CHUNK = 1 << 20
_PSEUDO_FS = tuple(Path(p) for p in ("/proc", "/sys", "/dev"))
_warned: set[str] = set()  # paths already warned about (a watch loop lists every half second)


def _warn_once(path: Path, why: str) -> None:
    if str(path) not in _warned:
        if len(_warned) > 10_000:
            _warned.clear()
        _warned.add(str(path))
        log.warning("store: skipping %s: %s", path, why)


def md5_file(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open_regular(path) as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading without ever blocking: O_NONBLOCK keeps a FIFO from
    stalling the open, and fstat on the open descriptor refuses anything but a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path} is not a regular file ({_kind(st.st_mode)})",
                             hint="only regular files are read; remove it or point at a file",
                             code="not_a_regular_file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


TMP_PREFIX = ".shipyard-tmp-"  # listings skip names starting ".shipyard-tmp"


def write_atomic(path: Path, data: bytes | str | BinaryIO, *, mode: int | None = None) -> None:
    """Write `path` whole or not at all: into a temp file beside it, then one rename. A reader
    never sees half a file, and `os.replace` replaces a symlink at `path` instead of following
    it. Every tool's local writes (store objects, site files, photon state) go through here."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, str):
                f.write(data.encode("utf-8"))
            elif isinstance(data, (bytes, bytearray, memoryview)):
                f.write(data)
            else:
                shutil.copyfileobj(data, f, _CHUNK)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LocalStore:
    """Objects are files under `root`; a key's '/' are directories."""

    def __init__(self, root: str | os.PathLike[str], *, create: bool = False, must_exist: bool = False) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)
        # Opening a store never invents a folder (a typo would silently "work"); `put` and
        # `move` create the folders they write into.
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        elif must_exist and not self.root.is_dir():
            raise NotFoundError(
                f"bucket folder {self.url} does not exist",
                hint="check the path, or create the folder first (mkdir -p)",
            )

    def __repr__(self) -> str:
        return f"LocalStore({self.url!r})"

    def _path(self, key: str) -> Path:
        validate_key(key)
        return self.root / key

    def _inside(self, path: Path) -> bool:
        return path == self.root or path.is_relative_to(self.root)

    def real_path(self, key: str) -> Path:
        """The file a key names, symlinks followed, checked to be a regular file inside the root.
        NotFoundError when absent; InputError for a symlink out of the root or a special file."""
        p = self._path(key)
        try:
            real = p.resolve(strict=True)
            st = real.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"object {key!r} not found in {self.url}") from None
        except (RuntimeError, OSError):  # a symlink loop (RuntimeError before Python 3.13), no access
            raise InputError(f"object {key!r} in {self.url} cannot be resolved (a symlink loop, or no access)",
                             code="symlink_loop") from None
        if any(real.is_relative_to(fs) for fs in _PSEUDO_FS):
            raise InputError(f"object {key!r} in {self.url} is in {real.parent}, a pseudo-filesystem",
                             hint="/proc, /sys and /dev are never read as objects", code="not_a_regular_file")
        if not self._inside(real):
            raise InputError(f"object {key!r} in {self.url} is a symlink to {real}, outside the bucket",
                             hint="copy the file into the bucket; symlinks out of it are never followed",
                             code="outside_root")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"object {key!r} in {self.url} is {_kind(st.st_mode)}, not a regular file",
                             hint="only regular files are read", code="not_a_regular_file")
        return real

    def _writable(self, key: str) -> Path:
        """The path to write a key to, after checking that its folder stays inside the root (a
        `succeeded` symlinked to /etc is refused, not written through)."""
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        parent = p.parent.resolve()
        if not self._inside(parent):
            raise InputError(f"cannot write {key!r}: {p.parent} leads to {parent}, outside the bucket {self.url}",
                             hint="remove the symlink; the bucket's folders must be real folders inside it",
                             code="outside_root")
        return parent / p.name

    def _info(self, key: str, st: os.stat_result, etag: str | None = None) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=st.st_size,
            modified=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
            etag=etag,
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Walk only the deepest directory the prefix names, then filter by the rest.
        base_dir = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / base_dir if base_dir else self.root
        if not start.is_dir() or not self._inside(start.resolve()):
            return
        found: list[tuple[str, os.stat_result]] = []
        for dirpath, dirnames, filenames in os.walk(start):  # followlinks=False: linked folders stay out
            dirnames[:] = [d for d in dirnames if not d.startswith(".shipyard-tmp")]
            for name in dirnames:
                if os.path.islink(os.path.join(dirpath, name)):
                    _warn_once(Path(dirpath) / name, "a symlinked folder is not followed")
            for name in filenames:
                if name.startswith(".shipyard-tmp"):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    st = full.stat()
                    if full.is_symlink() and not self._inside(full.resolve()):
                        _warn_once(full, f"a symlink to {full.resolve()}, outside the bucket")
                        continue
                except FileNotFoundError:  # moved away while we listed, or a dangling symlink
                    continue
                except (OSError, RuntimeError) as exc:  # a symlink loop, no permission
                    _warn_once(full, str(exc))
                    continue
                if not stat.S_ISREG(st.st_mode):
                    _warn_once(full, f"{_kind(st.st_mode)}, not a regular file")
                    continue
                found.append((key, st))
        for key, st in sorted(found):
            yield self._info(key, st)

    def list_dirs(self, prefix: str = "") -> list[str]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        try:
            if not self._inside(base.resolve()):
                return []
            names = [e.name for e in os.scandir(base)
                     if e.is_dir(follow_symlinks=False) and not e.name.startswith(".shipyard-tmp")]
        except (FileNotFoundError, NotADirectoryError):
            return []
        # A folder whose name could not be a key (a backslash, say) holds nothing we can address.
        return sorted(f"{prefix}{n}/" for n in names if "\\" not in n)

    def head(self, key: str) -> ObjectInfo:
        try:
            p = self.real_path(key)
            st = p.stat()
            etag = md5_file(p)  # the file may be moved away between stat() and here (a racing worker)
        except FileNotFoundError:
            raise NotFoundError(f"object {key!r} not found in {self.url}") from None
        return self._info(key, st, etag)

    def exists(self, key: str) -> bool:
        try:
            self.real_path(key)
            return True
        except (NotFoundError, InputError):
            return False

    def open(self, key: str) -> BinaryIO:
        try:
            return open_regular(self.real_path(key))
        except FileNotFoundError:
            raise NotFoundError(f"object {key!r} not found in {self.url}") from None

    def put(self, key: str, data: bytes | BinaryIO) -> None:
        write_atomic(self._writable(key), data)

    def move(self, src: str, dst: str) -> None:
        s = self._path(src)
        if s.is_symlink() and not self._inside(s.resolve()):
            raise InputError(f"object {src!r} in {self.url} is a symlink out of the bucket; not moved",
                             code="outside_root")
        d = self._writable(dst)
        try:
            os.replace(s, d)
        except FileNotFoundError:
            raise NotFoundError(f"object {src!r} not found in {self.url}") from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def local_path(self, key: str) -> Path | None:
        """The confined real path (see real_path); the plain path when the key does not exist yet."""
        try:
            return self.real_path(key)
        except NotFoundError:
            return self._path(key)
