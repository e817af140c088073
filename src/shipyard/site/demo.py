"""The embedded demo site (the same files as examples/site/public), written where `demo` runs."""

from __future__ import annotations

import shutil
from pathlib import Path

DEMO_SITE = Path(__file__).resolve().parent / "demo_site"


def write(folder: str) -> tuple[Path, Path]:
    """(the site folder, the bucket folder) under `folder`; the site is rewritten every time."""
    base = Path(folder)
    source = base / "public"
    if source.exists():
        shutil.rmtree(source)
    shutil.copytree(DEMO_SITE, source)
    return source, base / "bucket"
