"""`plan --base REF` for pull requests, and the embedded demo.

plan: the policies whose text changed since a git ref (added or edited; compared parsed, so
reformatting is not a change) are dry-run, and the resources they would now match are shown
against the ledger (new / already open). Nothing is recorded, sent or remediated.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from shipyard import aws
from shipyard.custodian.bundle import check_dir
from shipyard.custodian.model import PolicyFile, check_file, policy_files
from shipyard.custodian.runner import RunOptions, RunReport, run_once
from shipyard.errors import ConfigError, InputError
from shipyard.notify import MemoryNotifier

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "custodian" / "policies"


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60)


def changed_policies(root: Path, base: str) -> set[str]:
    """Names of policies under `root` that are new or different from `base`."""
    if base.startswith("-"):
        raise InputError(f"invalid git ref {base!r}")
    prefix = _git(root, "rev-parse", "--show-prefix")
    if prefix.returncode:
        raise InputError(f"{root} is not inside a git checkout", hint="plan --base compares with git")
    if _git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}").returncode:
        raise InputError(f"unknown git ref {base!r}", hint="fetch it first (git fetch origin main)")
    before: dict[str, dict] = {}
    for path in policy_files(root):
        rel = prefix.stdout.strip() + path.relative_to(root).as_posix()
        old = _git(root, "show", f"{base}:{rel}")
        if old.returncode == 0:
            try:
                specs, _ = check_file(PolicyFile(old.stdout, rel))
            except InputError:
                continue
            before.update({s.name: s.data for s in specs})
    now = check_dir(root, with_c7n=False)
    return {s.name for s in now.specs if before.get(s.name) != s.data}


def plan(root: Path, base: str, opts: RunOptions, log: Callable[[str], None]) -> tuple[set[str], RunReport | None]:
    names = changed_policies(root, base)
    if not names:
        return names, None
    opts.policies, opts.dryrun, opts.security_hub, opts.only = str(root), True, False, names
    return names, run_once(opts, notifier=MemoryNotifier(), log=log)


def demo(policies: Path | None, log: Callable[[str], None]) -> tuple[RunReport, RunReport, str]:
    """moto in this process, a public bucket and an untagged instance, two runs of the example
    policies: the first finds both and makes the bucket private (remediate: true), the second
    reports the bucket resolved. Returns both reports and the ledger's path."""
    try:
        from moto.server import ThreadedMotoServer  # a dev/demo dependency, imported only here
    except ImportError:
        raise ConfigError("the demo needs moto (the in-process AWS stand-in)",
                          hint="make install, or pip install 'shipyard[demo]'") from None

    root = policies or EXAMPLES
    if not root.is_dir():
        raise InputError(f"no example policies at {root}", hint="pass --policies DIR")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = dict(os.environ)
    os.environ.update({"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "demo",
                       "AWS_SECRET_ACCESS_KEY": "demo", "AWS_DEFAULT_REGION": "us-east-1"})
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    aws.reset_clients()
    try:
        s3 = aws.client("s3", region="us-east-1")
        s3.create_bucket(Bucket="shipyard-demo-public", ACL="public-read")
        s3.create_bucket(Bucket="shipyard-demo-private")
        ec2 = aws.client("ec2", region="us-east-1")
        ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
        log("moto: made a public bucket, a private bucket and an untagged instance")
        work = Path(tempfile.mkdtemp(prefix="shipyard-custodian-demo-"))
        opts = dict(policies=str(root), security_hub=True, output_url=str(work / "runs"),
                    database_url=str(work / "findings.sqlite"))
        first = run_once(RunOptions(**opts), log=log)
        second = run_once(RunOptions(**opts), log=log)
        return first, second, opts["database_url"]
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)
        aws.reset_clients()
