"""`${NAME}` expansion in a deployment file, before it is validated.

- `${BRANCH}`: the branch, made safe for an env name (lowercase, runs of anything but a-z0-9
  become `-`). From $BRANCH, else CI's variables (GITHUB_HEAD_REF, GITHUB_REF_NAME, CI_COMMIT_REF_NAME),
  else `git rev-parse --abbrev-ref HEAD` in the file's folder.
- `${GIT_SHA}`: $GIT_SHA, else $GITHUB_SHA, else `git rev-parse HEAD`; the first 12 characters.
- `${ANY_ENV_VAR}`: the process environment.
- Names filled at start time are kept as they are: `${PORT}` (the release's port).
- `$${` writes a literal `${`.

An unknown name is an InputError naming the field where it appears (never its value).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

from shipyard.errors import InputError

_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
RUNTIME_NAMES = frozenset({"PORT"})


def slug(text: str, limit: int = 40) -> str:
    """`feature/Login_page` -> `feature-login-page` (an env name, a DNS label piece)."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:limit].rstrip("-")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def builtin_values(cwd: Path, environ: dict[str, str] | None = None) -> dict[str, Callable[[], str | None]]:
    """Lazily computed values for BRANCH and GIT_SHA (git runs only when a file uses them)."""
    env = os.environ if environ is None else environ

    def branch() -> str | None:
        raw = (env.get("BRANCH") or env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME")
               or env.get("CI_COMMIT_REF_NAME") or _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd))
        return slug(raw) if raw else None

    def sha() -> str | None:
        raw = env.get("GIT_SHA") or env.get("GITHUB_SHA") or _git(["rev-parse", "HEAD"], cwd)
        return raw[:12] if raw else None

    return {"BRANCH": branch, "GIT_SHA": sha}


def expand(tree: Any, cwd: Path, environ: dict[str, str] | None = None) -> Any:
    """`tree` (parsed JSON) with every `${NAME}` in its strings replaced."""
    env = dict(os.environ if environ is None else environ)
    builtins = builtin_values(cwd, env)
    cache: dict[str, str | None] = {}

    def value(name: str, where: str) -> str:
        if name not in cache:
            cache[name] = builtins[name]() if name in builtins else env.get(name)
        got = cache[name]
        if got is None:
            hint = ("set BRANCH or run inside a git checkout" if name == "BRANCH" else
                    "set GIT_SHA or run inside a git checkout" if name == "GIT_SHA" else
                    f"export {name}, or write $${{{name}}} for a literal")
            raise InputError(f"{where}: ${{{name}}} is not set", hint=hint, field=where)
        return got

    def sub(text: str, where: str) -> str:
        def one(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            name = m.group(1)
            return m.group(0) if name in RUNTIME_NAMES else value(name, where)

        return _REF.sub(one, text)

    def walk(node: Any, where: str) -> Any:
        if isinstance(node, str):
            return sub(node, where or "(file)")
        if isinstance(node, dict):
            return {k: walk(v, f"{where}.{k}" if where else k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{where}[{i}]") for i, v in enumerate(node)]
        return node

    return walk(tree, "")
