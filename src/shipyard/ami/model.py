"""The AMI pipeline's data: images, launch-template versions, refreshes, and release options.

Plain dataclasses for what AWS tells us (the adapter in `ami/aws.py` fills them), a pydantic
model (`extra="forbid"`) for what a user asks for. The pure decisions in `ami/plan.py` take
only these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shipyard.errors import InputError

MIN_KEEP = 2  # always something to roll back to


@dataclass(frozen=True)
class Image:
    """One AMI, as DescribeImages reports it."""

    image_id: str
    created: datetime
    name: str = ""
    state: str = "available"
    tags: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    snapshots: tuple[str, ...] = ()
    # DescribeImages' DeregistrationProtection: "disabled", or "enabled..." (with or without cooldown)
    protected: bool = False


@dataclass(frozen=True)
class RefreshStatus:
    """One DescribeInstanceRefreshes entry, reduced to what the decisions need."""

    refresh_id: str
    status: str
    percent: int | None = None
    instances_to_update: int | None = None
    reason: str = ""


class Outcome(str, Enum):
    """How a release ended; the value is the CLI's exit code (2/3 stay ShipyardError's)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"
    ROLLBACK_FAILED = "rollback-failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed-out"
    UNCHANGED = "unchanged"

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]


_EXIT_CODES = {Outcome.SUCCEEDED: 0, Outcome.UNCHANGED: 0, Outcome.FAILED: 1,
               Outcome.ROLLED_BACK: 4, Outcome.ROLLBACK_FAILED: 5, Outcome.CANCELLED: 6,
               Outcome.TIMED_OUT: 7}

# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstanceRefresh.html
TERMINAL_STATES = frozenset({"Successful", "Failed", "Cancelled", "RollbackSuccessful",
                             "RollbackFailed"})

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}


def parse_duration(text: str | float | int) -> float:
    """'30m', '90s', '1h', '45' (seconds) -> seconds."""
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        m = _DURATION.match(text)
        if not m:
            raise InputError(f"not a duration: {text!r}", hint="write e.g. 30m, 90s, 1h or seconds")
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if seconds <= 0:
        raise InputError(f"a duration must be positive: {text!r}")
    return seconds


def parse_checkpoints(text: str | None) -> list[int]:
    """'20,50,100' -> [20, 50, 100]: ascending, unique, 1..100, ending at 100 so the refresh
    replaces every instance (https://docs.aws.amazon.com/autoscaling/ec2/userguide/
    asg-adding-checkpoints-instance-refresh.html)."""
    if not text:
        return []
    try:
        points = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise InputError(f"--checkpoints must be whole percentages: {text!r}",
                         hint="write e.g. --checkpoints 20,50,100") from None
    if any(not 1 <= p <= 100 for p in points) or points != sorted(set(points)):
        raise InputError(f"--checkpoints must be ascending, unique, within 1..100: {text!r}")
    if points and points[-1] != 100:
        raise InputError(f"--checkpoints must end at 100: {text!r}",
                         hint="the refresh stops at the last checkpoint; add 100")
    return points


class ReleaseOptions(BaseModel):
    """What `shipyard ami release` is asked to do."""

    model_config = ConfigDict(extra="forbid")

    branch: str = Field(min_length=1)
    launch_template: str = Field(min_length=1, description="lt-... id or the template's name")
    asg: str = Field(min_length=1)
    keep_images: int = 5
    keep_versions: int = 5
    timeout: float = 1800
    min_healthy: int = Field(90, ge=0, le=100)
    warmup: int = Field(60, ge=0)
    checkpoints: list[int] = Field(default_factory=list)
    checkpoint_delay: int = Field(300, ge=0)
    on_timeout: Literal["rollback", "cancel"] = "rollback"
    poll_interval: float = Field(15, gt=0)
    # After a cancel/rollback, how long to follow it before giving up watching.
    settle_timeout: float = Field(900, gt=0)

    @field_validator("keep_images", "keep_versions")
    @classmethod
    def _at_least_two(cls, v: int) -> int:
        if v < MIN_KEEP:
            raise ValueError(f"must be at least {MIN_KEEP}, so there is always something to "
                             "roll back to")
        return v

    @model_validator(mode="after")
    def _checkpoints_valid(self) -> "ReleaseOptions":
        parse_checkpoints(",".join(map(str, self.checkpoints)))
        return self


def utc(dt: datetime | str) -> datetime:
    """A timezone-aware UTC datetime from a datetime or an ISO 8601 string ('...Z' included)."""
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
