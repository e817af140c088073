"""Time for the service, injected: `now()` and `sleep()` come from one object.

The service never calls time.time() or asyncio.sleep() itself, so tests run it on a clock they
advance by hand (tests/pulse/clock.py) instead of sleeping on the wall clock, and every
decision (schedule slots, alert thresholds, reminders, missed pushes) is taken on that time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
