"""Attachments: find the object a payload names and stage it as a file slack_sdk can upload.

`bucket` means, in this order:
  * `s3://bucket[/prefix]`: an S3 bucket (or any S3 API server, via AWS_ENDPOINT_URL);
  * the path of an existing local folder (absolute, or relative to the working directory):
    a LocalStore; this is what the propagator passes (`store.url`);
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
from typing import Iterator

from shipyard.errors import InputError, NotFoundError, ShipyardError, TransientError
from shipyard.jarvis.payload import AttachmentRef
from shipyard.store import LocalStore, ObjectStore, local_copy, open_store

# files.getUploadURLExternal accepts files up to 1 GB
# (https://docs.slack.dev/reference/methods/files.getUploadURLExternal; slack_sdk MAX_V2_FILE_SIZE).
MAX_UPLOAD = 1024 * 1024 * 1024
# S3 bucket naming rules: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def store_for(bucket: str) -> ObjectStore:
    """The store a payload's `bucket` names (see the module docstring for the rules)."""
    if bucket.startswith("s3://"):
        return open_store(bucket)
    folder = Path(bucket).expanduser()
    if folder.is_dir():
        return LocalStore(folder)
    if "/" in bucket or "\\" in bucket or bucket.startswith(("~", ".")):
        raise NotFoundError(
            f"attachment folder {bucket!r} does not exist",
            hint="give an existing local folder, an S3 bucket name, or s3://bucket/prefix",
            code="attachment_not_found",
        )
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
def stage(ref: AttachmentRef) -> Iterator[StagedFile]:
    """Check the object exists and fits, and make it a local file for the `with` block (a local
    store's own file, else a streamed temp copy deleted on exit: shipyard.store.local_copy)."""
    store = store_for(ref.bucket)
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
        exc.details.setdefault("code", "attachment_unreadable")
        raise
    if info.size > MAX_UPLOAD:
        raise InputError(
            f"attachment {source} is {info.size:,} bytes; Slack accepts files up to {MAX_UPLOAD:,}",
            hint="compress or split the file, or post a link to it instead",
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
