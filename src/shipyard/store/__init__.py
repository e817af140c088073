"""Object stores: the bucket every tool reads and writes.

`open_store("s3://bucket/prefix")` gives an S3Store, anything else a LocalStore over a folder.
Both speak the same small protocol (`ObjectStore`), so a tool never asks which one it has.
"""

from __future__ import annotations

from shipyard.store.base import ObjectInfo, ObjectStore, validate_key
from shipyard.store.local import LocalStore, write_atomic
from shipyard.store.spool import local_copy, spool_dir, spool_file, sweep_spool

__all__ = ["ObjectInfo", "ObjectStore", "LocalStore", "open_store", "validate_key", "is_s3_url", "local_copy",
           "spool_dir", "spool_file", "sweep_spool", "write_atomic"]


def is_s3_url(url: str) -> bool:
    return str(url).startswith("s3://")


def open_store(url: str, **kwargs) -> ObjectStore:
    """A store for `s3://bucket[/prefix]` or a local folder path."""
    if is_s3_url(url):
        # lazy: boto3 costs ~0.3 s of start-up that a local-folder run never needs
        from shipyard.store.s3 import S3Store

        return S3Store.from_url(str(url), **kwargs)
    return LocalStore(url, **kwargs)
