"""An object as a local file: `local_copy(store, key)`, and the one spool folder for temp copies.

Readers that need a real, seekable file (DuckDB, pyarrow, slack_sdk's upload) use `local_copy`:
a LocalStore gives its confined real path (no copy); any other store streams the object into
the spool folder, and the copy is deleted on exit. Temp files are named `<pid>-...`, so
`sweep_spool()` can delete what a killed process left behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from shipyard.store.base import ObjectStore
from shipyard.store.local import LocalStore

CHUNK = 1 << 20


def spool_dir() -> Path:
    """Where temp copies of files live: one folder, so a killed process's leftovers can be found."""
    d = Path(tempfile.gettempdir()) / "shipyard-spool"
    d.mkdir(exist_ok=True)
    return d


def spool_file(suffix: str = "") -> tuple[int, str]:
    """A new temp file (fd, path) named after this process, for `sweep_spool`."""
    return tempfile.mkstemp(prefix=f"{os.getpid()}-", suffix=suffix, dir=spool_dir())


def sweep_spool() -> int:
    """Delete temp files left by processes that died (SIGKILL, OOM, a Lambda timeout) without
    cleaning up: a file whose process no longer exists. Returns how many went."""
    gone = 0
    for f in spool_dir().iterdir():
        pid = f.name.split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)  # signal 0: does the process exist?
            continue
        except ProcessLookupError:
            pass
        except PermissionError:  # another user's live process
            continue
        f.unlink(missing_ok=True)
        gone += 1
    return gone


@contextmanager
def local_copy(store: ObjectStore, key: str, *, suffix: str = "") -> Iterator[Path]:
    """The object as a local file for the `with` block.

    LocalStore: its real path, confined to the store's root (a symlink out of the root, a FIFO
    or a device raise InputError; a missing key NotFoundError). Other stores: a streamed copy in
    the spool folder (never the whole object in memory), deleted on exit.
    """
    if isinstance(store, LocalStore):
        yield store.real_path(key)
        return
    fd, path = spool_file(suffix)
    try:
        with os.fdopen(fd, "wb") as out, store.open(key) as src:
            shutil.copyfileobj(src, out, CHUNK)
        yield Path(path)
    finally:
        Path(path).unlink(missing_ok=True)


__all__ = ["local_copy", "spool_dir", "spool_file", "sweep_spool"]
