"""The orphan reaper's timing policy, with an injected clock (no processes)."""

from __future__ import annotations

from stockade.sandbox.proctree import OrphanReaper


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_it_sweeps_at_once_after_a_kill_and_otherwise_once_per_interval() -> None:
    clock, sweeps = _Clock(), []
    reaper = OrphanReaper(
        interval=1.0, clock=clock, reap=lambda live: sweeps.append(set(live)) or 0
    )
    reaper.live.add(42)
    reaper.after_kill(killed=False)  # the first job's end: a sweep
    clock.now += 0.5
    reaper.after_kill(killed=False)  # within the interval: none
    reaper.after_kill(killed=True)  # a kill made zombies: a sweep all the same
    clock.now += 0.9
    reaper.after_kill(killed=False)  # 0.9 s after the last sweep: none
    clock.now += 0.1
    reaper.after_kill(killed=False)  # a whole interval: a sweep
    assert sweeps == [{42}, {42}, {42}]  # the live main pids are left to their handles
