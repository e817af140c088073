"""`shipyard pulse sync`: mirror committed monitor files from a bucket (or folder) atomically.

Layout on disk, for `--to /etc/pulse/monitors`:

    /etc/pulse/monitors                     -> .monitors.versions/v-20261128T104501-3f2a  (symlink)
    /etc/pulse/.monitors.versions/v-...     one complete copy per sync that changed something

Each sync downloads everything into a fresh version folder, compares it with the current one,
and, when different, points the symlink at it with one rename(2) of a new symlink over the old
(atomic on POSIX: https://man7.org/linux/man-pages/man2/rename.2.html). A reader (the running
monitor) sees the old tree or the new one, never a mix; a file deleted in the bucket is simply
absent from the new version (deletions propagate). Old versions are pruned, keeping a few.

Refuses an empty source unless `allow_empty`: a wrong prefix must not silently delete every
monitor.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from shipyard.errors import ConfigError, InputError
from shipyard.pulse.config import MONITOR_SUFFIXES, parse_file
from shipyard.pulse.model import ConfigProblem
from shipyard.store import ObjectStore, is_s3_url, local_copy, open_store, validate_key
from shipyard.store.local import md5_file

_CHUNK = 1 << 20  # hashing reads


@dataclass
class SyncReport:
    source: str
    target: str
    changed: bool
    version: str | None
    files: int
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[ConfigProblem] = field(default_factory=list)


def _tree_digests(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if not root.is_dir():
        return out
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h = hashlib.sha256(oct(stat.S_IMODE(p.stat().st_mode)).encode())  # a mode change is a change
            with open(p, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
            out[p.relative_to(root).as_posix()] = h.hexdigest()
    return out


def _skip(key: str) -> bool:
    # Folder markers from S3 consoles, and hidden paths (.git/, .github/) of a repo checkout.
    return key.endswith("/") or any(part.startswith(".") for part in key.split("/"))


def _copy(store: ObjectStore, key: str, dest: Path) -> None:
    """One file into the new version. A local source is read through its store: a symlink out
    of the source folder, a FIFO or a device is refused (LocalStore confines it), never
    followed; the file's permission bits are kept (a 0600 file holding a token stays 0600).
    Objects from S3 have no mode: they get 0644."""
    mode = 0o644
    with local_copy(store, key) as src:
        if store.local_path(key) is not None:
            mode = stat.S_IMODE(src.stat().st_mode) & 0o777
        shutil.copyfile(src, dest)
    os.chmod(dest, mode)


def publish(source: str, target: str, *, allow_empty: bool = False) -> SyncReport:
    """CI's side: a checked-out folder -> s3://bucket/prefix (changed files put, files deleted
    from the repo deleted from the bucket). Every monitor file is parsed first: one invalid
    file and nothing is uploaded."""
    src = open_store(source)
    files = [i.key for i in src.list("") if not _skip(i.key)]
    if not files and not allow_empty:
        raise InputError(f"{source} has no files; refusing to remove every monitor from {target}",
                         hint="pass --allow-empty to really empty the bucket prefix")
    problems = []
    for key in files:
        if key.endswith(MONITOR_SUFFIXES):
            with local_copy(src, key) as path:
                try:
                    parse_file(path, key)
                except ConfigProblem as exc:
                    problems.append(exc)
    if problems:
        raise InputError(f"{len(problems)} invalid monitor file(s); nothing was uploaded: "
                         + "; ".join(str(p) for p in problems), hint="run `shipyard pulse validate` and fix them")
    dst = open_store(target)
    remote = {i.key: i.etag for i in dst.list("") if not _skip(i.key)}
    rep = SyncReport(source=src.url, target=dst.url, changed=False, version=None, files=len(files))
    for key in files:
        with local_copy(src, key) as path:
            if remote.get(key) != md5_file(path):  # S3's ETag of a single-part upload is the MD5
                (rep.updated if key in remote else rep.added).append(key)
                with open(path, "rb") as f:
                    dst.put(key, f)
    for key in sorted(set(remote) - set(files)):
        dst.delete(key)
        rep.removed.append(key)
    rep.changed = bool(rep.added or rep.updated or rep.removed)
    return rep


def sync(source: str, target: str | Path, *, keep: int = 3, allow_empty: bool = False) -> SyncReport:
    """Mirror `source` (s3://bucket/prefix or a folder) into `target` atomically; an s3://
    target is `publish` (CI: the repo checkout -> the bucket)."""
    if isinstance(target, str) and is_s3_url(target):
        return publish(source, target, allow_empty=allow_empty)
    target = Path(target).expanduser()
    if not is_s3_url(source) and not Path(source).is_dir():
        raise InputError(f"source folder {source!r} does not exist",
                         hint="pass --from s3://bucket/prefix or an existing folder")
    store = open_store(source)
    versions = target.parent / f".{target.name}.versions"
    versions.mkdir(parents=True, exist_ok=True)

    if target.exists() and not target.is_symlink():
        if not target.is_dir():
            raise ConfigError(f"{str(target)!r} exists and is not a folder",
                              hint="point --to at a folder (it becomes a symlink to the current version)")
        # First sync into a folder that was filled by hand: adopt it as a version, then
        # replace it by a symlink. This one time there is a moment with no folder; the
        # monitor keeps its monitors when the folder is briefly missing.
        adopted = versions / f"v-adopted-{uuid.uuid4().hex[:6]}"
        os.rename(target, adopted)
        os.symlink(os.path.relpath(adopted, target.parent), target)

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    new = versions / f"v-{stamp}-{uuid.uuid4().hex[:6]}"
    tmp = versions / f".tmp-{new.name}"
    tmp.mkdir()
    try:
        n = 0
        for info in store.list(""):
            if _skip(info.key):
                continue
            validate_key(info.key)
            dest = tmp / info.key
            dest.parent.mkdir(parents=True, exist_ok=True)
            _copy(store, info.key, dest)
            n += 1
        if n == 0 and not allow_empty:
            raise InputError(f"{source} has no files; refusing to remove every monitor",
                             hint="check the bucket/prefix, or pass --allow-empty to really empty the monitor folder")
        current = target.resolve() if target.is_symlink() else None
        old = _tree_digests(current) if current else {}
        fresh = _tree_digests(tmp)
        problems = []
        for rel in sorted(fresh):
            if rel.endswith(MONITOR_SUFFIXES):
                try:
                    parse_file(tmp / rel, rel)
                except ConfigProblem as exc:
                    problems.append(exc)
        report = SyncReport(
            source=store.url, target=str(target), changed=fresh != old or current is None,
            version=None, files=n,
            added=sorted(set(fresh) - set(old)),
            updated=sorted(k for k in fresh if k in old and fresh[k] != old[k]),
            removed=sorted(set(old) - set(fresh)),
            problems=problems,
        )
        if not report.changed:
            shutil.rmtree(tmp)
            report.version = current.name if current else None
            return report
        os.rename(tmp, new)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    link = target.parent / f".{target.name}.link-{uuid.uuid4().hex[:6]}"
    os.symlink(os.path.relpath(new, target.parent), link)
    os.replace(link, target)  # the atomic swap
    report.version = new.name
    _prune(versions, keep=max(keep, 2), current=new)
    return report


def _prune(versions: Path, *, keep: int, current: Path) -> None:
    """Remove old versions, keeping the newest `keep` (the previous one may still be read by a
    monitor that listed it just before the swap)."""
    olds = sorted((p for p in versions.iterdir() if p.is_dir() and p.name.startswith("v-")),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    for p in olds[keep:]:
        if p != current:
            shutil.rmtree(p, ignore_errors=True)
