"""Where photon keeps what it knows: `<state_dir>/<service>/<env>/`.

    state.json          the env: endpoint, releases, the live one, a rollout in progress, history
    lock                flock'd by the command working on the env (released by the kernel on SIGKILL)
    control.json        promote/rollback asked by another terminal during a rollout
    releases/<id>/      log.jsonl (the release's output as JSON lines), pid
    router/             haproxy.cfg, pid, haproxy.log (local target)

state.json is written whole, by rename, so a killed photon leaves the last complete version.
It holds secret *references* only, never values (the runner resolves them into the process
environment and nowhere else).
"""

from __future__ import annotations

import fcntl
import json
import logging
import re
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from shipyard.errors import InputError, ShipyardError
from shipyard.store import write_atomic

HISTORY_KEPT = 20
log = logging.getLogger(__name__)


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def atomic_write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True))


@dataclass
class Release:
    id: str
    version: str
    spec: dict[str, Any]  # Deployment.spec(): image, command, vars, secret refs; never secret values
    status: str = "starting"  # starting | live | stopped | failed
    created: str = field(default_factory=utcnow)
    slot: str = ""  # the local router's server name, or the AWS service colour
    address: str = ""  # host:port (local) / target group (aws)
    pid: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class EnvState:
    service: str
    env: str
    target: str = "local"
    endpoint: str | None = None
    port: int | None = None
    seq: int = 0
    live: str | None = None
    releases: dict[str, Release] = field(default_factory=dict)
    rollout: dict[str, Any] | None = None  # {"release": id, "previous": id|None, "state": Rollout.to_dict()}
    router: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)  # target inventory (aws)
    history: list[dict[str, Any]] = field(default_factory=list)

    def next_release_id(self) -> str:
        self.seq += 1
        return f"r{self.seq}"

    def record(self, event: str, **fields: Any) -> None:
        self.history.append({"time": utcnow(), "event": event, **fields})
        del self.history[:-HISTORY_KEPT]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EnvState":
        rel = {k: Release(**v) for k, v in d.get("releases", {}).items()}
        return cls(**{**d, "releases": rel})


class EnvDir:
    """One service+env's folder, its lock and its state file."""

    def __init__(self, root: Path, service: str, env: str) -> None:
        self.root = root
        self.service, self.env = service, env
        self.path = root / service / env
        self.state_file = self.path / "state.json"
        self.control_file = self.path / "control.json"

    def release_dir(self, release_id: str) -> Path:
        return self.path / "releases" / release_id

    def exists(self) -> bool:
        return self.state_file.is_file()

    def load(self) -> EnvState:
        if not self.exists():
            return EnvState(self.service, self.env)
        try:
            return EnvState.from_dict(json.loads(self.state_file.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise ShipyardError(f"{self.state_file}: unreadable photon state ({type(exc).__name__})",
                                hint="it was not written by this photon; move it away and apply again") from None

    def save(self, state: EnvState) -> None:
        atomic_write_json(self.state_file, state.to_dict())

    @contextmanager
    def locked(self, *, wait: bool = True) -> Iterator[bool]:
        """Hold the env's lock; yields False when `wait=False` and another command holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "lock", "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    yield False
                    return
                log.warning("%s/%s: another photon command is working on it; waiting", self.service, self.env)
                fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield True
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def ask(self, action: str) -> None:
        """Leave promote/rollback for the command running the rollout."""
        atomic_write_json(self.control_file, {"action": action, "time": utcnow()})

    def take_request(self) -> str | None:
        try:
            data = json.loads(self.control_file.read_text(encoding="utf-8"))
            self.control_file.unlink(missing_ok=True)
        except (OSError, ValueError):
            return None
        action = data.get("action") if isinstance(data, dict) else None
        return action if action in ("promote", "rollback") else None

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        for parent in (self.path.parent,):
            try:
                parent.rmdir()
            except OSError:
                pass


def all_envs(root: Path) -> list[EnvDir]:
    if not root.is_dir():
        return []
    return [EnvDir(root, s.name, e.name) for s in sorted(root.iterdir()) if s.is_dir() and not s.is_symlink()
            for e in sorted(s.iterdir()) if (e / "state.json").is_file()]


def check_name(kind: str, value: str) -> str:
    if not re.match(r"^[a-z][a-z0-9-]{0,39}$", value or ""):
        raise InputError(f"{kind} {value!r} is not a photon name", hint="lowercase letters, digits and '-'")
    return value
