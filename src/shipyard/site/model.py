"""The data of `shipyard site`: files, remote objects, headers, release manifests, branch names.

Everything here is pure: header rules and content types are functions of the key and the
settings, so `deploy`, `serve DIR` and the tests agree on what a file is served with.
"""

from __future__ import annotations

import fnmatch
import mimetypes
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shipyard.errors import InputError
from shipyard.redact import redact_obj
from shipyard.settings import SiteSettings

RELEASES_DIR = ".shipyard/releases"
PREVIEWS_DIR = "previews"
# Keys a site deploy never lists, deletes or serves: release manifests, the local target's
# content-addressed copies, and (for a deploy at the root) the previews of branches.
RESERVED_PREFIXES = (".shipyard/",)

# Types mimetypes does not know everywhere (the table depends on /etc/mime.types).
_EXTRA_TYPES = {
    ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
    ".html": "text/html", ".htm": "text/html", ".json": "application/json",
    ".map": "application/json", ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml", ".wasm": "application/wasm", ".woff2": "font/woff2",
    ".woff": "font/woff", ".avif": "image/avif", ".webp": "image/webp", ".txt": "text/plain",
    ".xml": "application/xml", ".ico": "image/x-icon", ".md": "text/markdown",
}
# Types that are text though not text/*: they get `; charset=utf-8` and may be compressed.
_TEXTUAL = {"application/json", "application/javascript", "application/xml",
            "application/manifest+json", "image/svg+xml", "application/wasm"}
COMPRESSIBLE_MIN_BYTES = 256  # below this gzip's header outweighs what it saves
ENCODINGS = {"gzip": "gzip", "br": "br"}


@dataclass(frozen=True)
class Headers:
    """What an object is served with (S3 stores these on the object)."""

    content_type: str
    cache_control: str
    content_encoding: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"Content-Type": self.content_type, "Cache-Control": self.cache_control}
        if self.content_encoding:
            out["Content-Encoding"] = self.content_encoding
        return out


@dataclass(frozen=True)
class LocalFile:
    """A file to publish: `md5` is of its bytes, `body_md5` of what is uploaded (compressed or
    not: it is what S3's ETag of a single-part upload will be)."""

    key: str
    path: str
    size: int
    md5: str
    body_md5: str
    headers: Headers


@dataclass(frozen=True)
class RemoteObject:
    """An object as listed: `etag` without quotes; `body_md5` known when the ETag is an MD5,
    or read from the object's metadata for a multipart upload (ETag 'md5-N')."""

    key: str
    etag: str
    size: int
    body_md5: str | None = None

    @property
    def multipart(self) -> bool:
        return "-" in self.etag

    @property
    def known_md5(self) -> str | None:
        return self.body_md5 or (None if self.multipart else self.etag)

    def md5_given(self, recorded: "ReleaseFile | None") -> str | None:
        """The body's MD5, trusting a release's record of the same ETag first."""
        if recorded is not None and recorded.etag and recorded.etag == self.etag:
            return recorded.body_md5
        return self.known_md5


class ReleaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    md5: str  # of the file's bytes
    body_md5: str  # of what was uploaded
    size: int
    content_type: str
    cache_control: str
    content_encoding: str | None = None
    version: str | None = None  # S3 VersionId, or the local target's content address
    # The ETag the object had once written: when the listing shows the same ETag, the object
    # is still this body, even where ETags are not MD5s (multipart, SSE-KMS).
    etag: str | None = None

    def headers(self) -> Headers:
        return Headers(self.content_type, self.cache_control, self.content_encoding)


class Release(BaseModel):
    """The manifest of one deploy: exactly the file set it published (`rollback` restores it)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    time: str
    git_sha: str | None = None
    branch: str | None = None
    prefix: str = ""
    source: str = ""
    files: dict[str, ReleaseFile] = Field(default_factory=dict)
    uploaded: int = 0
    deleted: int = 0
    invalidation_id: str | None = None
    rollback_of: str | None = None


@dataclass
class Summary:
    """What a deploy, rollback or cleanup did (the `--json` output)."""

    target: str
    release: str | None = None
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    invalidation_id: str | None = None
    invalidation_paths: list[str] = field(default_factory=list)
    verified: int | None = None
    url: str | None = None
    dry_run: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The --json summary (a URL with credentials in it is masked)."""
        return redact_obj({"target": self.target, "release": self.release,
                "uploaded": len(self.uploaded), "deleted": len(self.deleted),
                "unchanged": self.unchanged, "skipped": self.skipped, "warnings": self.warnings,
                "invalidation_id": self.invalidation_id,
                "invalidation_paths": self.invalidation_paths, "verified": self.verified,
                "url": self.url, "dry_run": self.dry_run, "seconds": round(self.seconds, 3),
                "uploaded_keys": self.uploaded, "deleted_keys": self.deleted})


def content_type(key: str) -> str:
    """The Content-Type of `key`, with `charset=utf-8` for text (a browser guessing the charset
    of a page without one is how a `é` becomes `Ã©`)."""
    ext = "." + key.rsplit(".", 1)[-1].lower() if "." in key.rsplit("/", 1)[-1] else ""
    ctype = _EXTRA_TYPES.get(ext) or mimetypes.guess_type(key)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in _TEXTUAL - {"application/wasm"}:
        return f"{ctype}; charset=utf-8"
    return ctype


def compressible(ctype: str) -> bool:
    base = ctype.split(";")[0]
    return base.startswith("text/") or base in _TEXTUAL


@lru_cache(maxsize=16)
def _fingerprint_re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def is_fingerprinted(key: str, pattern: str) -> bool:
    return bool(_fingerprint_re(pattern).search(key.rsplit("/", 1)[-1]))


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def matches(key: str, pattern: str) -> bool:
    """`pattern` matches the key or its file name ('*' crosses '/', as in fnmatch)."""
    rx = _glob(pattern)
    return bool(rx.match(key) or rx.match(key.rsplit("/", 1)[-1]))


def cache_control(key: str, settings: SiteSettings) -> str:
    """The first header rule that matches `key` (rules from `[[site.headers]]`)."""
    fingerprinted = is_fingerprinted(key, settings.fingerprint_pattern)
    for rule in settings.headers:
        if rule.fingerprinted is not None and rule.fingerprinted != fingerprinted:
            continue
        if matches(key, rule.match):
            return rule.cache_control
    return "no-cache"  # no rule: never let a proxy keep a stale copy


def headers_for(key: str, settings: SiteSettings, *, encoding: str | None = None) -> Headers:
    return Headers(content_type(key), cache_control(key, settings), encoding)


def excluded(key: str, patterns: list[str]) -> bool:
    return any(matches(key, p) for p in patterns)


_BRANCH_BAD = re.compile(r"[^a-z0-9]+")


def sanitize_branch(branch: str) -> str:
    """A branch name as one safe path segment and DNS label: `feature/Login_v2` ->
    `feature-login-v2` (lowercase, [a-z0-9-], at most 63 characters)."""
    clean = _BRANCH_BAD.sub("-", branch.lower()).strip("-")[:63].strip("-")
    if not clean:
        raise InputError(f"branch name {branch!r} has no letters or digits",
                         hint="pass the git branch name, e.g. --branch feature/login")
    return clean


def preview_prefix(branch: str) -> str:
    return f"{PREVIEWS_DIR}/{sanitize_branch(branch)}/"


def validate_key(key: str) -> str:
    """A key stays inside its root: no absolute path, no `..`, no empty segment, no NUL."""
    parts = key.split("/")
    if (not key or key.startswith("/") or "\\" in key or "\x00" in key
            or any(p in ("", ".", "..") for p in parts)):
        raise InputError(f"refusing key {key!r}: it would leave the site's root",
                         hint="keys are relative paths without '..' or empty segments")
    return key
