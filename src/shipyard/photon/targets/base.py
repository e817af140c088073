"""The Target protocol: what the rollout driver needs from a backend (local router, AWS ALB).

A target owns the endpoint and the running releases of one service+env. The driver
(runner.drive) never asks which target it talks to; it only calls these methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, NamedTuple, Protocol

from shipyard.photon.model import Deployment
from shipyard.photon.state import EnvDir, EnvState, Release


@dataclass
class Ctx:
    """What a target call works on: the env's folder and state, and the file."""

    dir: EnvDir
    state: EnvState
    dep: Deployment | None = None


class Health(NamedTuple):
    ok: bool
    detail: str = ""
    fatal: bool = False  # the release is gone (exited, circuit breaker): no point waiting


class Target(Protocol):
    def prepare(self, dep: Deployment) -> dict[str, str]:
        """Check what the file needs before anything changes; the release's environment."""

    def drives_rollout(self, dep: Deployment) -> bool:
        """True when the backend runs the rollout itself (AWS native driver): see run_rollout."""

    def reconcile(self, ctx: Ctx) -> list[str]:
        """Make reality match the state (orphans stopped, router/services back); what it did."""

    def ensure_endpoint(self, ctx: Ctx) -> str:
        """Create the stable endpoint if missing; its URL."""

    def start(self, ctx: Ctx, release: Release, environment: dict[str, str]) -> None:
        """Start a release with no traffic; fills release.address/slot/pid."""

    def health(self, ctx: Ctx, release: Release) -> Health:
        """The release's health, checked directly (not through the endpoint)."""

    def smoke(self, ctx: Ctx, release: Release, path: str) -> int:
        """The HTTP status of one GET `path` sent to the release directly (0: no answer)."""

    def set_weights(self, ctx: Ctx, weights: dict[str, int]) -> None:
        """Traffic shares in percent per release id (they sum to 100)."""

    def counters(self, ctx: Ctx, release: Release) -> tuple[int, int]:
        """Cumulative (requests, errors) the endpoint sent to/got from a release."""

    def alarms(self, ctx: Ctx) -> list[str]:
        """Names of the file's alarms that are in ALARM."""

    def retire(self, ctx: Ctx, release: Release) -> None:
        """Take a release out of the endpoint (drained) and stop it."""

    def log_records(self, ctx: Ctx, release: Release, *, follow: bool,
                    sleep: Callable[[float], None]) -> Iterator[dict[str, Any]]:
        """The release's log as records: time, release, stream, message."""

    def terminate(self, ctx: Ctx) -> list[str]:
        """Remove everything of this env; what was removed."""


def env_vars(dep: Deployment, secrets: dict[str, str], settings_otlp: str | None) -> dict[str, str]:
    """The release's environment: vars, resolved secrets and the OpenTelemetry variables."""
    out: dict[str, str] = dict(dep.config.vars)
    if dep.tracing.enabled:
        out["OTEL_SERVICE_NAME"] = dep.service
        out["OTEL_RESOURCE_ATTRIBUTES"] = (f"service.name={dep.service},deployment.environment={dep.env},"
                                           f"service.version={dep.release_version}")
        endpoint = dep.tracing.otlp_endpoint or settings_otlp
        if endpoint:
            out["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    out.update(secrets)
    return out


def weights_for(live: str | None, new: str, percent: int) -> dict[str, int]:
    if live is None or live == new:
        return {new: 100}
    return {new: percent, live: 100 - percent}

