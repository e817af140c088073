"""A clock the test moves by hand, for the service's injected `clock` (shipyard.pulse.clock).

The service runs in its own thread and loop; `advance()` is called from the test's thread and
wakes, thread-safely, every `sleep()` whose deadline has passed. `settled(n)` says the loop has
caught up: `n` tasks sleep with deadlines still ahead (none woken and not yet run).
"""

from __future__ import annotations

import asyncio
import threading
import time


class ManualClock:
    def __init__(self, start: float | None = None) -> None:
        self.t = time.time() if start is None else start
        self._lock = threading.Lock()
        self._sleepers: dict[asyncio.Future, tuple[asyncio.AbstractEventLoop, float]] = {}

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            self._sleepers[fut] = (loop, self.t + seconds)
        try:
            await fut
        finally:
            with self._lock:
                self._sleepers.pop(fut, None)

    def next_deadline(self) -> float | None:
        with self._lock:
            return min((d for _, d in self._sleepers.values()), default=None)

    def advance(self, seconds: float) -> None:
        self.advance_to(self.t + seconds)

    def advance_to(self, t: float) -> None:
        with self._lock:
            self.t = max(self.t, t)
            due = [(f, loop) for f, (loop, d) in self._sleepers.items() if d <= self.t]
        for f, loop in due:
            loop.call_soon_threadsafe(lambda f=f: f.done() or f.set_result(None))

    def settled(self, n: int) -> bool:
        with self._lock:
            return sum(1 for _, d in self._sleepers.values() if d > self.t) >= n
