"""Attachments: find the object a payload names and stage it as a file slack_sdk can upload.

`bucket` means, in this order:
  * `s3://bucket[/prefix]`: an S3 bucket (or any S3 API server, via AWS_ENDPOINT_URL);
  * a local folder path (absolute, relative, ~): a LocalStore, ONLY inside an allowed root
    (`jarvis.attachment_roots`, none by default, plus what the caller vouches for: the CLI's
    --attach file, a tool's own bucket in its notices); resolved with symlinks followed, then
    checked; /proc, /sys and /dev never; keys that are symlinks out of the folder, FIFOs or
    devices are refused without being opened;
  * anything else: a plain S3 bucket name, as the blog's callers send it.

slack_sdk's files_upload_v2 reads the whole file into memory to POST it (see
slack_sdk/web/internal_utils.py `_to_v2_file_upload_item`), so we never add a second copy: a local
file is passed by path, an S3 object is streamed to a temporary file first and passed by path
(shipyard.store.local_copy).
"""

from __future__ import annotations

import re
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator, Sequence

from shipyard.errors import InputError, NotFoundError, ShipyardError, TransientError
from shipyard.jarvis.payload import AttachmentRef
from shipyard.store import LocalStore, ObjectStore, local_copy, open_store

# files.getUploadURLExternal accepts files up to 1 GB
# (https://docs.slack.dev/reference/methods/files.getUploadURLExternal; slack_sdk MAX_V2_FILE_SIZE).
MAX_UPLOAD = 1024 * 1024 * 1024
# S3 bucket naming rules: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


# Pseudo-filesystems: never a source of attachments, whatever the configured roots say.
_PSEUDO = tuple(Path(p) for p in ("/proc", "/sys", "/dev"))


def _within(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def _looks_local(bucket: str) -> bool:
    return "/" in bucket or "\\" in bucket or bucket.startswith(("~", "."))


def store_for(bucket: str, *, roots: Sequence[str | Path] = ()) -> ObjectStore:
    """The store a payload's `bucket` names (see the module docstring for the rules). A local
    folder must lie inside one of `roots` once symlinks are resolved; pseudo-filesystems never do."""
    if bucket.startswith("s3://"):
        return open_store(bucket)
    folder = Path(bucket).expanduser()
    allowed = [Path(r).expanduser().resolve() for r in roots]
    # A plain name is a local folder only when it is one inside an allowed root; else S3.
    if _looks_local(bucket) or (allowed and folder.is_dir() and _within(folder.resolve(), allowed)):
        real = folder.resolve()
        # Refused before anything about the path is said: a caller cannot probe the disk.
        if not _within(real, allowed) or _within(real, _PSEUDO):
            raise InputError(
                f"attachment folder {bucket!r} is not an allowed attachment source",
                hint="upload the file to S3 and name the bucket, or (on the server) add the folder to "
                     "SHIPYARD_JARVIS__ATTACHMENT_ROOTS / [jarvis] attachment_roots",
                code="attachment_not_allowed")
        if not real.is_dir():
            raise NotFoundError(
                f"attachment folder {bucket!r} does not exist",
                hint="give an existing local folder, an S3 bucket name, or s3://bucket/prefix",
                code="attachment_not_found",
            )
        return LocalStore(real)
    if not _S3_BUCKET.match(bucket):
        raise InputError(
            f"attachment bucket {bucket!r} is neither a local folder nor a valid S3 bucket name",
            hint="S3 bucket names are 3-63 lowercase letters, digits, dots and hyphens",
            code="invalid_payload",
        )
    return open_store(f"s3://{bucket}")


@dataclass
class StagedFile:
    """A file on this machine ready to upload (valid inside `stage`'s with block)."""

    path: Path
    filename: str
    size: int
    source: str


@contextmanager
def stage(ref: AttachmentRef, *, roots: Sequence[str | Path] = (),
          max_bytes: int = MAX_UPLOAD) -> Iterator[StagedFile]:
    """Check the object is allowed, exists, is a regular file and fits, and make it a local file
    for the `with` block (a local store's own file, else a streamed temp copy deleted on exit:
    shipyard.store.local_copy). Local folders must lie inside `roots` (see store_for); a key
    that is a symlink out of its folder, a FIFO or a device is refused without being opened."""
    store = store_for(ref.bucket, roots=roots)
    source = store.uri(ref.key)
    try:
        info = store.head(ref.key)
    except NotFoundError:
        raise NotFoundError(
            f"attachment {source} not found",
            hint=f"upload the file before sending the notification, or fix bucket/key "
            f"(bucket={ref.bucket!r}, key={ref.key!r})",
            code="attachment_not_found",
        ) from None
    except ShipyardError as exc:
        exc.details["code"] = ("attachment_not_allowed" if exc.details.get("code") in
                               ("outside_root", "not_a_regular_file", "symlink_loop") else "attachment_unreadable")
        raise
    cap = min(max_bytes, MAX_UPLOAD)
    if info.size > cap:
        raise InputError(
            f"attachment {source} is {info.size:,} bytes; the limit is {cap:,}",
            hint="compress or split the file, or post a link to it instead"
                 + ("" if cap == MAX_UPLOAD else " (the limit is SHIPYARD_JARVIS__MAX_ATTACHMENT_BYTES)"),
            code="attachment_too_large",
        )
    filename = PurePosixPath(ref.key).name
    with ExitStack() as stack:
        try:
            path = stack.enter_context(local_copy(store, ref.key, suffix=PurePosixPath(ref.key).suffix))
        except ShipyardError as exc:
            exc.details.setdefault("code", "attachment_unreadable")
            raise
        except Exception as exc:  # a stream cut mid-way (botocore, OSError): worth a retry
            raise TransientError(
                f"reading attachment {source} failed: {type(exc).__name__}: {exc}",
                hint="retry; check that the store is reachable and the disk has room",
                code="attachment_unreadable",
            ) from exc
        yield StagedFile(path, filename, path.stat().st_size, source)
