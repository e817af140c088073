"""LocalStore: a folder on disk as the bucket (the embedded default)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from shipyard.errors import NotFoundError
from shipyard.store.base import ObjectInfo, validate_key

_CHUNK = 1 << 20


def md5_file(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


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
        if not start.is_dir():
            return
        found: list[tuple[str, os.stat_result]] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".shipyard-tmp")]
            for name in filenames:
                if name.startswith(".shipyard-tmp"):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    try:
                        found.append((key, full.stat()))
                    except FileNotFoundError:  # moved away while we listed
                        continue
        for key, st in sorted(found):
            yield self._info(key, st)

    def list_dirs(self, prefix: str = "") -> list[str]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        try:
            names = [e.name for e in os.scandir(base) if e.is_dir() and not e.name.startswith(".shipyard-tmp")]
        except (FileNotFoundError, NotADirectoryError):
            return []
        # A folder whose name could not be a key (a backslash, say) holds nothing we can address.
        return sorted(f"{prefix}{n}/" for n in names if "\\" not in n)

    def head(self, key: str) -> ObjectInfo:
        p = self._path(key)
        try:
            st = p.stat()
            etag = md5_file(p)  # the file may be moved away between stat() and here (a racing worker)
        except FileNotFoundError:
            raise NotFoundError(f"object {key!r} not found in {self.url}") from None
        return self._info(key, st, etag)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"object {key!r} not found in {self.url}") from None

    def put(self, key: str, data: bytes | BinaryIO) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(prefix=".shipyard-tmp-", dir=p.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                if isinstance(data, (bytes, bytearray, memoryview)):
                    f.write(data)
                else:
                    shutil.copyfileobj(data, f, _CHUNK)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def move(self, src: str, dst: str) -> None:
        s, d = self._path(src), self._path(dst)
        d.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(s, d)
        except FileNotFoundError:
            raise NotFoundError(f"object {src!r} not found in {self.url}") from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)
