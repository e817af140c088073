"""Policy bundles: validate a folder, publish it immutably, load the current one.

Layout in the store (a folder or s3://bucket/prefix):

    bundles/<id>/<file>.yml ...     the policy files, never rewritten
    bundles/<id>/manifest.json      written last: every file with its sha256
    current.json                    {"bundle": "<id>", ...}: flipped last, in one PUT

`<id>` is the git commit (12 hex) when the folder is a clean git checkout, else
`sha256-<16 hex>` of the content. A run reads current.json, then only files the manifest lists,
checking each hash: a run never sees a half-uploaded set, because current.json names a bundle
only after its manifest exists (an S3 PUT and a local rename are both atomic).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from shipyard.custodian import c7n
from shipyard.custodian.model import (PolicyFile, PolicySpec, Problem, check_file,
                                      duplicate_names, policy_files)
from shipyard.errors import InputError, NotFoundError
from shipyard.store import open_store, validate_key

_BUNDLE_ID = re.compile(r"^[A-Za-z0-9._-]{1,80}$")


def _read(store, key: str) -> bytes:
    with store.open(key) as f:
        return f.read()


@dataclass
class Checked:
    root: Path
    files: dict[Path, PolicyFile]
    specs: list[PolicySpec]
    problems: list[Problem]


def check_dir(root: Path, *, with_c7n: bool = True) -> Checked:
    """Our rules and c7n's schema over every policy file under `root`."""
    files: dict[Path, PolicyFile] = {}
    specs: list[PolicySpec] = []
    problems: list[Problem] = []
    for path in policy_files(root):
        try:
            pf = PolicyFile(path.read_text(encoding="utf-8"), str(path))
        except InputError as exc:
            problems.append(Problem(str(path), None, exc.message, exc.hint))
            continue
        files[path] = pf
        s, p = check_file(pf)
        specs += s
        problems += p
    problems += duplicate_names(specs)
    if with_c7n:
        problems += c7n.validate(files)
    return Checked(Path(root), files, specs, problems)


def require_valid(checked: Checked) -> None:
    if checked.problems:
        listing = "\n  ".join(str(p) for p in checked.problems)
        raise InputError(f"{len(checked.problems)} problem(s) in the policies:\n  {listing}",
                         hint="fix them; nothing was uploaded or run")


def content_hash(root: Path, paths: list[Path]) -> tuple[str, dict[str, str]]:
    digests = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in paths}
    whole = hashlib.sha256("".join(f"{k}\0{v}\n" for k, v in sorted(digests.items())).encode())
    return whole.hexdigest(), digests


def git_commit(root: Path) -> str | None:
    """HEAD's commit when `root` is in a git checkout with no uncommitted change under it."""
    try:
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "."],
                                capture_output=True, text=True, timeout=30)
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if status.returncode or head.returncode or status.stdout.strip():
        return None
    return head.stdout.strip()


@dataclass
class SyncResult:
    bundle: str
    files: int
    uploaded: bool
    current: str


def sync(src: Path, dest_url: str, *, now: float | None = None) -> SyncResult:
    """Validate `src`, upload it as an immutable bundle, then point current.json at it."""
    if not dest_url.startswith("s3://") and Path(dest_url).exists() and not Path(dest_url).is_dir():
        raise InputError(f"--to {dest_url} is a file", hint="name a folder or s3://bucket/prefix")
    checked = check_dir(src)
    require_valid(checked)
    paths = list(checked.files)
    whole, digests = content_hash(checked.root, paths)
    commit = git_commit(checked.root)
    bundle = commit[:12] if commit else f"sha256-{whole[:16]}"
    store = open_store(dest_url)
    manifest_key = f"bundles/{bundle}/manifest.json"
    uploaded = False
    if store.exists(manifest_key):
        existing = json.loads(_read(store, manifest_key))
        if existing.get("content_hash") != whole:
            raise InputError(f"bundle {bundle} already exists with other content",
                             hint="bundles are immutable: commit the change (new git sha)")
    else:
        for p in paths:
            store.put(f"bundles/{bundle}/{p.relative_to(checked.root).as_posix()}", p.read_bytes())
        manifest = {"bundle": bundle, "content_hash": whole, "git_commit": commit,
                    "files": digests, "policies": sorted(s.name for s in checked.specs)}
        store.put(manifest_key, json.dumps(manifest, indent=2).encode())
        uploaded = True
    current = {"bundle": bundle, "content_hash": whole, "git_commit": commit,
               "synced_at": time.time() if now is None else now}
    store.put("current.json", json.dumps(current, indent=2).encode())
    return SyncResult(bundle, len(paths), uploaded, store.uri("current.json"))


@dataclass
class Loaded:
    bundle: str
    root: Path  # a local folder holding the policy files


def load_current(url: str, workdir: Path) -> Loaded:
    """The current bundle of `url` copied into `workdir`; a plain local folder of policies
    (no current.json) is used as it is."""
    if not url.startswith("s3://") and Path(url).is_dir() and not (Path(url) / "current.json").exists():
        root = Path(url)
        whole, _ = content_hash(root, policy_files(root))
        return Loaded(f"local-{whole[:12]}", root)
    store = open_store(url)
    try:
        current = json.loads(_read(store, "current.json"))
    except NotFoundError:
        raise NotFoundError(f"no current.json under {url}",
                            hint="publish policies first: shipyard custodian sync --from DIR --to URL") from None
    bundle = str(current.get("bundle", ""))
    if not _BUNDLE_ID.match(bundle):
        raise InputError(f"{store.uri('current.json')} names an invalid bundle {bundle!r}")
    manifest = json.loads(_read(store, f"bundles/{bundle}/manifest.json"))
    root = workdir / "policies"
    for rel, digest in sorted(manifest["files"].items()):
        data = _read(store, f"bundles/{bundle}/{rel}")  # the store refuses keys with ..
        if hashlib.sha256(data).hexdigest() != digest:
            raise InputError(f"bundle {bundle}: {rel} does not match its manifest hash",
                             hint="re-run `shipyard custodian sync`; bundles are never rewritten")
        target = root / validate_key(rel)  # a manifest cannot write outside the work folder
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return Loaded(bundle, root)
