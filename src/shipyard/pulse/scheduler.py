"""Which monitor runs when: a heap of (next fire time, monitor), no I/O, time passed in.

Fire times come from the schedule (never from when a check finished), so nothing drifts. A
monitor that is removed or rescheduled gets a new generation; its old heap entries are dropped
when they come up.
"""

from __future__ import annotations

import heapq

from shipyard.pulse.model import Monitor


class Scheduler:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, int]] = []
        self._gen: dict[str, int] = {}
        self._seq = 0

    def _push(self, due: float, mid: str) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, mid, self._gen.get(mid, 0)))

    def add(self, m: Monitor, now: float) -> None:
        """(Re)start `m`'s schedule at `now`; earlier entries for it are dropped."""
        self._gen[m.id] = self._gen.get(m.id, 0) + 1
        self._push(m.schedule.first(now, m.id), m.id)

    def remove(self, mid: str) -> None:
        self._gen[mid] = self._gen.get(mid, 0) + 1

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float, monitors: dict[str, Monitor]) -> list[tuple[Monitor, float]]:
        """Every (monitor, scheduled time) due at `now`; each is queued again for its next
        slot (a slot already in the past is skipped, not run late twice)."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            due, _, mid, gen = heapq.heappop(self._heap)
            m = monitors.get(mid)
            if m is None or gen != self._gen.get(mid, 0):
                continue  # removed or rescheduled since
            self._push(m.schedule.next_after(due, now), mid)
            out.append((m, due))
        return out
