"""The only module that knows Cloud Custodian. Everything else sees plain data.

c7n pins its dependencies exactly (c7n 0.9.53: boto3==1.43.103, urllib3==2.8.0,
jsonschema==4.26.0, ...; c7n-org 0.6.52: click==8.5.0). Installed next to shipyard those pins
would downgrade boto3/botocore and click for every tool, so c7n lives in its own virtualenv
(`.venv-c7n`, made by `make install`/`make install-dev`) and is driven through its command line,
which is also its only supported interface (the maintainers say c7n has no public Python API):
- `custodian validate` checks the policy files against c7n's schema;
- `c7n-org run` runs the policies over every account (assume-role) and region, in parallel,
  and writes `<out>/<account name>/<region>/<policy>/resources.json`;
- one short script under c7n's own Python turns the matched resources into ARNs with c7n's
  resource managers (`get_arns`), so every resource type c7n knows gets its real ARN.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shipyard.custodian.model import PolicyFile, Problem
from shipyard.errors import ConfigError, ShipyardError, TransientError, did_you_mean
from shipyard.settings import get_settings

# <checkout>/.venv-c7n/bin: this file is <checkout>/src/shipyard/custodian/c7n.py.
_CHECKOUT_VENV = Path(__file__).resolve().parents[3] / ".venv-c7n" / "bin"

# Runs under c7n's interpreter: resources in, [ids, arns] out (stdin/stdout JSON).
_ARNS_SCRIPT = """
import json, sys
from c7n.config import Config
from c7n.policy import Policy
from c7n.resources import load_resources
jobs = json.load(sys.stdin)
load_resources(tuple({j["resource"] for j in jobs}))
out = []
for j in jobs:
    p = Policy({"name": "arns", "resource": j["resource"]},
               Config.empty(region=j["region"], account_id=j["account_id"]))
    m = p.resource_manager
    out.append({"ids": [r.get(m.resource_type.id) for r in j["resources"]],
                "arns": m.get_arns(j["resources"])})
json.dump(out, sys.stdout)
"""


def bin_dir() -> Path:
    """Where `custodian` and `c7n-org` are: settings, else the checkout's .venv-c7n, else PATH."""
    configured = get_settings().custodian.c7n_bin_dir
    candidates = [Path(configured)] if configured else [_CHECKOUT_VENV]
    found = shutil.which("c7n-org")
    if found and not configured:
        candidates.append(Path(found).parent)
    for c in candidates:
        if (c / "custodian").is_file() and (c / "c7n-org").is_file():
            return c
    raise ConfigError("Cloud Custodian (custodian, c7n-org) is not installed",
                      hint="run `make install` (it makes .venv-c7n), or set "
                      "SHIPYARD_CUSTODIAN__C7N_BIN_DIR to the folder holding c7n-org")


def c7n_python() -> str:
    """The interpreter c7n is installed in: the venv's python, else the one the `custodian`
    script names on its #! line (a system-wide install in a container)."""
    folder = bin_dir()
    if (folder / "python").exists():
        return str(folder / "python")
    first = (folder / "custodian").read_text(encoding="utf-8", errors="replace").splitlines()[:1]
    if first and first[0].startswith("#!") and Path(first[0][2:].strip().split()[0]).exists():
        return first[0][2:].strip().split()[0]
    raise ConfigError(f"cannot tell which Python runs c7n in {folder}",
                      hint="point SHIPYARD_CUSTODIAN__C7N_BIN_DIR at a virtualenv's bin folder")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    endpoint = get_settings().aws.endpoint_url
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    env.setdefault("AWS_DEFAULT_REGION", get_settings().aws.region or "us-east-1")
    env["PYTHONWARNINGS"] = "ignore"
    return env


def call(args: list[str], *, what: str, timeout: float, stdin: str | None = None,
          cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a c7n command in its own process group: on timeout the whole group is killed,
    c7n-org's worker processes included."""
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=cwd,
                            start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TransientError(f"{what}: c7n did not finish within {timeout:.0f} s",
                             hint="raise custodian.run_timeout or run fewer regions") from None
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


# ---- validation -------------------------------------------------------------------------------

_POLICY_RE = re.compile(r"policy:\s*([\w.-]+)", re.I)
_PATH_RE = re.compile(r"On instance((?:\[[^\]]+\])+):")
_ENUM_RE = re.compile(r"'enum':\s*\[([^\]]*)\]", re.S)


def _c7n_problem(pf: PolicyFile, text: str) -> Problem:
    """One c7n error message as a Problem at the line of the node it names."""
    names = _POLICY_RE.findall(text)
    index = next((i for i, p in enumerate(pf.data.get("policies") or [])
                  if isinstance(p, dict) and names and p.get("name") == names[0]), None)
    path: tuple[Any, ...] = ("policies", index) if index is not None else ()
    m = _PATH_RE.search(text)
    typed_in = re.search(r"\{'type': '([^']+)'", text)
    if m and index is not None:
        steps = re.findall(r"\[([^\]]+)\]", m.group(1))
        path += tuple(int(s) if s.isdigit() else s.strip("'\"") for s in steps)
    elif typed_in and index is not None:
        # "Invalid filter type {'type': 'x'}": point at the filter or action with that type
        policy = pf.data["policies"][index]
        for section in ("filters", "actions"):
            items = policy.get(section) if isinstance(policy.get(section), list) else []
            hit = next((j for j, it in enumerate(items)
                        if isinstance(it, dict) and it.get("type") == typed_in.group(1)), None)
            if hit is not None:
                path += (section, hit)
                break
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    head = next((ln for ln in lines if not ln.startswith(("Error on policy", "Failed validating"))),
                lines[0] if lines else "invalid")
    hint = None
    enum = _ENUM_RE.search(text)
    typed = re.search(r"\{'type': '([^']+)'", head)
    if enum and typed:
        hint = did_you_mean(typed.group(1), re.findall(r"'([^']+)'", enum.group(1)))
    where = ".".join(str(s) for s in path[2:])
    prefix = f"policy {names[0]}: " if names else ""
    return Problem(pf.name, pf.line(*path) if path else None,
                   f"{prefix}{where + ': ' if where else ''}{head[:300]}", hint)


# (path, content hash) of every file -> problems: c7n's check costs a process start and the
# schema (~1.5 s); a loop or a re-sync of unchanged files should not pay it again.
_validated: dict[tuple[tuple[str, str], ...], list[Problem]] = {}


def validate(files: dict[Path, PolicyFile]) -> list[Problem]:
    """c7n's own schema check of each file (`custodian validate`), errors at file:line."""
    if not files:
        return []
    key = tuple(sorted((str(p), hashlib.sha256(p.read_bytes()).hexdigest()) for p in files))
    if key not in _validated:
        _validated[key] = _validate(files)
    return list(_validated[key])


def _validate(files: dict[Path, PolicyFile]) -> list[Problem]:
    exe = str(bin_dir() / "custodian")
    proc = call([exe, "validate", "--no-deps", *map(str, files)], what="validating policies",
                 timeout=300)
    if proc.returncode == 0:
        return []
    problems: list[Problem] = []
    by_path = {str(p): pf for p, pf in files.items()}
    current: PolicyFile | None = None
    chunk: list[str] = []

    def flush() -> None:
        if current is not None and chunk:
            problems.append(_c7n_problem(current, "\n".join(chunk)))

    # c7n logs "<time>: custodian.commands:ERROR <message>" records; continuation lines of a
    # long message carry no prefix.
    for line in proc.stderr.splitlines():
        rec = re.match(r"^\S+ \S+: custodian\.\w+:(\w+) (.*)$", line)
        if rec:
            flush()
            chunk = []
            level, msg = rec.groups()
            invalid = re.match(r"Configuration invalid: (.*)$", msg)
            if invalid:
                current = by_path.get(invalid.group(1).strip())
            elif level == "ERROR" and msg.strip() != "unknown":
                chunk = [msg]
        elif chunk:
            chunk.append(line)
    flush()
    if not problems:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        problems.append(Problem(", ".join(map(str, files)), None,
                                "c7n rejected the policies: " + " / ".join(tail)))
    return problems


# ---- runs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Observed:
    """What one policy matched in one account and region (c7n's resources.json)."""

    policy: str
    account_name: str
    region: str
    resources: list[dict[str, Any]]


def write_policies(path: Path, policies: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"policies": policies}, sort_keys=False), encoding="utf-8")
    return path


def write_accounts(path: Path, accounts: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"accounts": accounts}, sort_keys=False), encoding="utf-8")
    return path


def _run_args(output_dir: Path, dryrun: bool) -> list[str]:
    cache = output_dir.parent / ".c7n-cache"
    cache.mkdir(parents=True, exist_ok=True)
    # --cache-period 0: c7n caches describe calls for 15 minutes by default, which would hide
    # a fix (or a new resource) from the next run.
    return ["-s", str(output_dir), "--cache-period", "0"] + (["--dryrun"] if dryrun else [])


def run_org(accounts_file: Path | None, policies_file: Path, output_dir: Path, *, dryrun: bool,
            local: tuple[str, list[str]] | None = None, log: Any = None) -> list[Observed]:
    """`c7n-org run` over every account and region of the accounts file (or, with `local` =
    (name, regions), `custodian run` with the caller's own credentials); what each policy
    matched where it ran. A policy that failed in an account/region has no entry there."""
    output_dir.mkdir(parents=True, exist_ok=True)
    timeout = get_settings().custodian.run_timeout
    procs = []
    if local is None:
        args = [str(bin_dir() / "c7n-org"), "run", "-c", str(accounts_file), "-u",
                str(policies_file), *_run_args(output_dir, dryrun),
                "--cache-path", str(output_dir.parent / ".c7n-cache")]
        procs.append(call(args, what="running c7n-org", timeout=timeout))
    else:
        name, regions = local
        for region in regions:  # c7n-org needs a role or profile; the caller's own creds do not
            args = [str(bin_dir() / "custodian"), "run", "-r", region, str(policies_file),
                    *_run_args(output_dir / name / region, dryrun),
                    "-f", str(output_dir.parent / ".c7n-cache" / "local.cache")]
            procs.append(call(args, what="running custodian", timeout=timeout))
    text = "\n".join(p.stderr for p in procs)
    (output_dir / "c7n.log").write_text(text, encoding="utf-8")
    if log is not None:
        for line in text.splitlines():
            if " Ran account:" in line or "ERROR" in line or "count:" in line:
                log(line.split(" ", 2)[-1])
    found = []
    for res in sorted(output_dir.glob("*/*/*/resources.json")):
        policy_dir = res.parent
        found.append(Observed(policy_dir.name, policy_dir.parent.parent.name,
                              policy_dir.parent.name, json.loads(res.read_text(encoding="utf-8"))))
    if not found and any(p.returncode for p in procs):
        raise ShipyardError("c7n failed before any policy ran",
                            hint=f"see {output_dir / 'c7n.log'}: " + text.strip().splitlines()[-1][:200]
                            if text.strip() else None)
    return found


def resource_arns(jobs: list[dict[str, Any]]) -> list[dict[str, list[str]]]:
    """For each job {resource, region, account_id, resources}: {ids, arns} from c7n's managers."""
    if not jobs:
        return []
    proc = call([c7n_python(), "-c", _ARNS_SCRIPT], what="computing resource ARNs", timeout=300,
                 stdin=json.dumps(jobs, default=str))
    if proc.returncode != 0:
        raise ShipyardError("c7n could not compute the resources' ARNs",
                            hint="run with --debug; " + proc.stderr.strip().splitlines()[-1][:200]
                            if proc.stderr.strip() else None)
    return json.loads(proc.stdout)
