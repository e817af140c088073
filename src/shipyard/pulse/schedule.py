"""Schedules in Heartbeat's syntax: `@every <duration>` and cron expressions with seconds.

Heartbeat's `schedule` option (https://www.elastic.co/guide/en/beats/heartbeat/current/monitor-options.html#monitor-schedule)
takes either `@every 30s` (a Go duration, measured from when the monitor started) or a cron
expression in gorhill/cronexpr's syntax (https://github.com/gorhill/cronexpr):

    5 fields  minute hour day-of-month month day-of-week            (second = 0)
    6 fields  minute hour day-of-month month day-of-week year       (second = 0)
    7 fields  second minute hour day-of-month month day-of-week year

croniter puts the seconds LAST (`min hour dom mon dow sec`), so we reorder. Only `*` is
accepted for the year field: croniter has no year, and a monitor that stops in a given year is
better expressed with `enabled: false`.

Next fire times are always computed from the previous *scheduled* time, never from when the
check actually ran, so a slow event loop delays a check but never shifts the schedule (no drift).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import datetime

from croniter import croniter

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: object) -> float:
    """A Go duration (`30s`, `1m30s`, `500ms`, `2h`) or a bare number of seconds -> seconds.

    Raises ValueError with a message that says what is accepted.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration; write e.g. 30s, 1m30s, 500ms")
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError(f"duration {text} is negative")
        return float(text)
    s = str(text).strip()
    pos = 0
    total = 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"{text!r} is not a duration; write e.g. 30s, 1m30s, 500ms, 2h")
    return total


@dataclass(frozen=True)
class Schedule:
    """When a monitor runs. `every` (seconds) for `@every`, else a croniter expression."""

    text: str
    every: float | None = None
    cron: str | None = None

    def first(self, start: float, key: str = "") -> float:
        """The first fire time for a monitor (re)loaded at `start` (epoch seconds).

        An @every monitor starts within one interval (at most a minute) of loading, at an offset
        derived from its id: 1,000 monitors loaded together then spread over the interval
        instead of all firing in the same millisecond, and a monitor keeps its offset across
        restarts. Cron schedules fire on their own grid.
        """
        if self.every is not None:
            frac = zlib.crc32(key.encode()) / 2**32 if key else 0.0
            return start + frac * min(self.every, 60.0)
        return self._cron_next(start)

    def next_after(self, scheduled: float, now: float) -> float:
        """The next fire time after the one scheduled at `scheduled`, skipping any slot that
        is already in the past at `now` (a missed slot is not run late twice)."""
        if self.every is not None:
            nxt = scheduled + self.every
            if nxt <= now:
                missed = int((now - scheduled) // self.every)
                nxt = scheduled + (missed + 1) * self.every
            return nxt
        nxt = self._cron_next(scheduled)
        if nxt <= now:
            nxt = self._cron_next(now)
        return nxt

    def shortest_gap(self, start: float, samples: int = 8) -> float:
        """The shortest time between two fire times (cron: over the next few from `start`)."""
        if self.every is not None:
            return self.every
        times = [self._cron_next(start)]
        for _ in range(samples):
            times.append(self._cron_next(times[-1]))
        return min(b - a for a, b in zip(times, times[1:]))

    def _cron_next(self, after: float) -> float:
        # Local time, like cron and Heartbeat: `0 9 * * *` is nine o'clock on this machine.
        base = datetime.fromtimestamp(after).astimezone()
        return float(croniter(self.cron, base).get_next(float))


def parse_schedule(text: object) -> Schedule:
    """Parse Heartbeat's schedule syntax; ValueError says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("schedule must be a string such as '@every 30s' or '*/5 * * * * * *'")
    s = text.strip()
    if s.startswith("@every"):
        every = parse_duration(s[len("@every"):].strip())
        if every <= 0:
            raise ValueError(f"schedule {text!r}: the interval must be more than 0")
        return Schedule(text=s, every=every)
    if s.startswith("@"):
        raise ValueError(f"schedule {text!r}: only '@every <duration>' is supported among @-forms")
    fields = s.split()
    if len(fields) == 5:
        sec, rest, year = "0", fields, "*"
    elif len(fields) == 6:
        sec, rest, year = "0", fields[:5], fields[5]
    elif len(fields) == 7:
        sec, rest, year = fields[0], fields[1:6], fields[6]
    else:
        raise ValueError(
            f"schedule {text!r} has {len(fields)} fields; cron takes 5 (min hour dom month dow), "
            "6 (... year) or 7 (sec min hour dom month dow year) fields, or use '@every 30s'"
        )
    if year != "*":
        raise ValueError(f"schedule {text!r}: the year field must be '*'")
    expr = " ".join([*rest, sec])
    if not croniter.is_valid(expr):
        raise ValueError(f"schedule {text!r} is not a valid cron expression")
    return Schedule(text=s, cron=expr)
