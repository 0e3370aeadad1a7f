"""How many claimed jobs a worker keeps ready ahead of its free slots.

A pure policy with an injectable clock, tested without processes. The
buffer holds what the slots start in a short horizon at the recent pace: a
worker of millisecond jobs keeps a few dozen ready, so a slot starts its
next job the moment one ends; a worker of jobs that take seconds keeps
none, so it never sits on queued work another worker could run.

The horizon follows the store: it is at least ``refills`` of the
recorder's measured flush times (a claim made with one flush must last
until the next one's answer), because on a PostgreSQL whose commits wait
for the disk a fixed 20 ms ran dry before each refill arrived, and the
slots stood idle for a fifth of the run.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

__all__ = ["HORIZON", "REFILLS", "WINDOW", "Prefetch"]

#: Seconds of work the buffer holds at the recent pace, at least: enough to
#: cover a group commit's linger and its round trip.
HORIZON = 0.02
#: ... or this many of the recorder's flush times, if that is more.
REFILLS = 2.0
#: The pace is the number of jobs started in the last this many seconds.
WINDOW = 0.1


class Prefetch:
    """The claim-ahead buffer's size: ``limit`` at most (0: claim only for free
    slots), from the starts recorded with :meth:`started` in the last
    ``window`` seconds of ``clock``."""

    def __init__(
        self,
        limit: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        horizon: float = HORIZON,
        refills: float = REFILLS,
        window: float = WINDOW,
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._horizon = horizon
        self._refills = refills
        self._window = window
        self._starts: collections.deque[float] = collections.deque()

    def started(self) -> None:
        """A job was started (or handed to a slot) now."""
        if self.limit:
            self._starts.append(self._clock())

    def buffer(self, refill: float = 0.0) -> int:
        """How many claimed jobs to keep ready, given the store's flush time ``refill``."""
        if not self.limit:
            return 0
        starts, since = self._starts, self._clock() - self._window
        while starts and starts[0] < since:
            starts.popleft()
        horizon = max(self._horizon, self._refills * refill)
        return min(self.limit, round(len(starts) * horizon / self._window))

    def want(self, idle: int, ready: int, refill: float = 0.0) -> int:
        """How many jobs to claim now: ``idle`` free slots plus the buffer, less
        the ``ready`` ones already claimed (negative: none)."""
        return idle + self.buffer(refill) - ready
