"""Temp copies of files for readers that need a local, seekable path (DuckDB, pyarrow, LOAD DATA).

They live in one folder (`<tmp>/shipyard-spool`), named `<pid>-...`, so that what a killed loader
left behind (SIGKILL, OOM, a Lambda timeout) is found and removed by the next one (`sweep`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from shipyard.store import ObjectStore

CHUNK = 1 << 20


def spool_dir() -> Path:
    """Where temp copies of files live: one folder, so a killed loader's leftovers can be found."""
    d = Path(tempfile.gettempdir()) / "shipyard-spool"
    d.mkdir(exist_ok=True)
    return d


def spool_file(suffix: str) -> tuple[int, str]:
    """A new temp file (fd, path) named after this process, for `sweep_spool`."""
    return tempfile.mkstemp(prefix=f"{os.getpid()}-", suffix=suffix, dir=spool_dir())


def sweep_spool() -> int:
    """Delete temp files left by loaders that died without cleaning up: a file whose process no
    longer exists. Returns how many went."""
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


def spooled_copy(store: ObjectStore, key: str, suffix: str) -> str:
    """A temp file holding the object's bytes (for readers that need a seekable local file)."""
    fd, path = spool_file(suffix)
    try:
        with os.fdopen(fd, "wb") as out, store.open(key) as src:
            shutil.copyfileobj(src, out, CHUNK)
    except BaseException:
        os.unlink(path)
        raise
    return path


def suffix_of(name: str) -> str:
    """A file name's data suffix, `.csv.gz` included (readers pick their decoder by it)."""
    return "".join(Path(name).suffixes[-2:]) if name.lower().endswith(".gz") else Path(name).suffix
