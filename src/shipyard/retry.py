"""Exponential backoff with jitter, for the loops that must ride out a dependency outage.

Used by the propagator's `watch` (store or database down) and its SQS consumer: after each
failed attempt wait longer, capped, with jitter so several workers do not retry in step
(https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/).
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, base: float = 1.0, cap: float = 30.0, *, jitter: float = 0.25) -> None:
        self.base, self.cap, self.jitter = base, cap, jitter
        self.failures = 0

    def failed(self) -> float:
        """Record a failed attempt; the seconds to wait before the next one."""
        self.failures += 1
        delay = min(self.cap, self.base * 2 ** (self.failures - 1))
        return delay * random.uniform(1.0 - self.jitter, 1.0)

    def succeeded(self) -> int:
        """Record a success; how many failed attempts it ended (0 if none)."""
        ended, self.failures = self.failures, 0
        return ended
