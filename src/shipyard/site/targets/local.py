"""A folder as the bucket: the embedded default (`--to ./site-bucket`).

Each object is a file at `<root>/<key>` holding exactly the uploaded bytes (compressed when its
Content-Encoding says so); its headers are a sidecar `.shipyard/meta/<key>.json`, so
`site serve FOLDER` answers with what S3 would. Versions are content addresses: every body is
also kept (hard-linked when possible) as `.shipyard/objects/<md5>`, which is what `rollback`
restores from, the way S3 versioning does for a bucket.

Confined: keys never contain `..`; nothing is written through a symlink inside the folder
(writes go to a temporary file then `os.replace`, which replaces a link instead of following
it, and parents that are links are refused); FIFOs and other special files are never read.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Iterator

from shipyard.errors import InputError, NotFoundError
from shipyard.store import write_atomic
from shipyard.site.model import Headers, LocalFile, ReleaseFile, RemoteObject, validate_key
from shipyard.site.source import body_of, md5_path
from shipyard.site.targets.base import Served, Stored

META = ".shipyard/meta"
# mkstemp makes 0600 files; published files get the mode any new file would (a web server
# reading the folder must be able to).
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
OBJECTS = ".shipyard/objects"


class FolderTarget:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)

    def check(self) -> None:
        if self.root.is_dir():
            # A deploy deletes what the site lacks: `--to .` or `--to ~` must not empty a folder
            # that was never a site target.
            if not (self.root / ".shipyard").is_dir() and any(self.root.iterdir()):
                raise InputError(f"{self.url} has files and was never deployed to",
                                 hint="deploy to a new or empty folder (e.g. ./site-bucket); "
                                      "a deploy deletes whatever the site does not have")
            return
        if self.root.exists():
            raise InputError(f"{self.url} is not a folder", hint="--to takes s3://bucket[/prefix] or a folder")
        if not self.root.parent.is_dir():
            raise NotFoundError(f"the folder {self.root.parent} (parent of --to) does not exist",
                                hint="create it first, or check the path")
        # The folder itself is made by the first write: a deploy refused later changes nothing.

    def _path(self, key: str) -> Path:
        validate_key(key)
        path = self.root / key
        here = self.root
        for part in key.split("/")[:-1]:
            here = here / part
            if here.is_symlink():
                raise InputError(f"refusing to write {key!r}: {here} is a symlink",
                                 hint="remove the link from the target folder")
        return path

    def _write(self, path: Path, data: bytes) -> None:
        write_atomic(path, data, mode=FILE_MODE)

    def list(self, prefix: str = "", exclude: tuple[str, ...] = ()) -> dict[str, RemoteObject]:
        out: dict[str, RemoteObject] = {}
        start = self.root / prefix.rstrip("/") if prefix else self.root
        if not start.is_dir():
            return out
        for dirpath, dirnames, filenames in os.walk(start, followlinks=False):
            dirnames[:] = [d for d in dirnames if not (Path(dirpath) == self.root and d == ".shipyard")]
            for name in filenames:
                p = Path(dirpath) / name
                st = os.lstat(p)
                if not stat.S_ISREG(st.st_mode) or name.startswith(".shipyard-tmp"):
                    continue
                key = p.relative_to(self.root).as_posix()
                if key.startswith(prefix) and not (exclude and key.startswith(exclude)):
                    digest = md5_path(p)
                    out[key] = RemoteObject(key, digest, st.st_size, digest)
        return out

    def _keep(self, path: Path, md5: str) -> None:
        kept = self.root / OBJECTS / md5
        if kept.exists():
            return
        kept.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, kept)
        except OSError:  # another file system, or links not allowed: copy
            shutil.copyfile(path, kept)

    def _write_meta(self, key: str, headers: Headers, md5: str) -> None:
        meta = {"content_type": headers.content_type, "cache_control": headers.cache_control,
                "content_encoding": headers.content_encoding, "body_md5": md5}
        self._write(self._path(f"{META}/{key}.json"), json.dumps(meta).encode())

    def put(self, key: str, f: LocalFile) -> Stored:
        path = self._path(key)
        self._write(path, body_of(f))
        self._write_meta(key, f.headers, f.body_md5)
        self._keep(path, f.body_md5)
        return Stored(f.body_md5, f.body_md5)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)
            self._path(f"{META}/{key}.json").unlink(missing_ok=True)
            # Empty folders left behind would still answer as directories in `serve`.
            parent = (self.root / key).parent
            while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    def can_restore(self) -> str | None:
        return None

    def restore(self, key: str, rf: ReleaseFile) -> Stored:
        kept = self.root / OBJECTS / (rf.version or rf.body_md5)
        if not kept.is_file():
            raise NotFoundError(f"cannot restore {key!r}: its copy {kept.name} is gone from {OBJECTS}",
                                hint="the release's files were pruned; deploy the site again instead")
        self._write(self._path(key), kept.read_bytes())
        self._write_meta(key, rf.headers(), rf.body_md5)
        return Stored(rf.body_md5, rf.body_md5)

    def read_text(self, key: str) -> str | None:
        p = self._path(key)
        return p.read_text(encoding="utf-8") if p.is_file() else None

    def write_text(self, key: str, text: str) -> None:
        self._write(self._path(key), text.encode("utf-8"))

    def list_text(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        return sorted(f"{prefix}{p.name}" for p in folder.glob("*.json")) if folder.is_dir() else []

    def get(self, key: str) -> Served | None:
        try:
            path = self._path(key)
        except InputError:
            return None
        if path.is_symlink() or not path.is_file():
            return None
        meta_path = self._path(f"{META}/{key}.json")
        if not meta_path.is_file():
            return None  # not published by a deploy (a stray file in the folder)
        meta = json.loads(meta_path.read_text())
        headers = Headers(meta["content_type"], meta["cache_control"], meta.get("content_encoding"))
        return Served(headers, file_chunks(path), path.stat().st_size)


def file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            yield chunk
