"""Self-fencing: each job a worker holds dies before its lease can expire.

The store judges leases on the database's clock: a claim or renewal sets
``lease_expires`` to the database's *now* plus the lease, and another worker
recovers the job once the database's *now* passes it. A worker cannot read
that clock, but it knows a bound: the statement ran after the worker sent
it. So a job whose lease was last set by a claim or renewal *sent* at
``t`` (this host's ``CLOCK_MONOTONIC``) is killed by the worker's fence
(:mod:`stockade.sandbox.fence`) at ``t + lease - margin(lease)``, unless a
later renewal moves that on. Nothing here waits for the store: a worker cut
off from its database, or paused with SIGSTOP, has its jobs killed by the
fence, a process of its own.

The margin covers what can make the bound wrong: the two clocks running at
different rates (NTP slews a clock by at most 500 ppm: 15 ms of a 30 s
lease), the kill itself and the fence's wake-up on a busy host. A database
clock *stepped* forward (a time jump on the database host, or a worker's own
host on SQLite, whose clock is the process's) shortens every lease by the
step: the guarantee assumes clocks that are not stepped by more than the
margin while leases run.
"""

from __future__ import annotations

import time

from stockade.sandbox.fence import Fence

__all__ = ["LeaseFence", "margin"]


def margin(lease: float) -> float:
    """How long before its lease could expire a job is killed: ``lease/10``, at
    least 2 s, but at most ``lease/6``: a renewal is sent every ``lease/3``,
    so the cap leaves each one half the lease to land before the deadline it
    extends passes (a short lease on a busy store must not kill its jobs)."""
    return min(max(2.0, lease / 10), lease / 6)


class LeaseFence:
    """The worker's side of self-fencing: deadlines for the fence, one per job.

    Deadlines are sent in one message per claim batch and per renewal; the
    jobs that ended are cleared in one message with the next renewal (a
    deadline left a little longer kills nothing: the fence kills a slot
    cgroup only while the job is its latest occupant, and an ended job's
    processes are gone).
    """

    def __init__(self, fence: Fence | None, lease: float) -> None:
        self.fence = fence
        self.lease = lease
        self.margin = margin(lease)
        self.deadlines: dict[str, float] = {}
        self._ended: set[str] = set()

    def held(self, jobs: list[str], sent: float) -> None:
        """``jobs``' leases were set by a claim or renewal sent at ``sent`` (monotonic)."""
        if not jobs:
            return
        when = sent + self.lease - self.margin
        for job in jobs:
            self.deadlines[job] = when
            self._ended.discard(job)  # claimed again (a retry) before the clear went out
        if self.fence is not None:
            self.fence.deadline(when, jobs)

    def ended(self, job: str) -> None:
        """``job`` is no longer this worker's to run."""
        if self.deadlines.pop(job, None) is not None:
            self._ended.add(job)

    def flush(self) -> None:
        """Clear the deadlines of the jobs that ended since the last flush."""
        ended, self._ended = self._ended, set()
        if ended and self.fence is not None:
            self.fence.clear(sorted(ended))

    def passed(self, job: str) -> bool:
        """Whether ``job``'s deadline has passed: the fence may have killed it."""
        when = self.deadlines.get(job)
        return when is not None and time.monotonic() >= when
