"""The claim-ahead policy, without processes: a clock the test moves."""

from __future__ import annotations

from stockade.engine.prefetch import WINDOW, Prefetch


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _started(pace: Prefetch, n: int) -> None:
    for _ in range(n):
        pace.started()


def test_the_buffer_holds_what_the_slots_start_in_the_horizon() -> None:
    clock = Clock()
    pace = Prefetch(64, clock=clock)
    assert pace.buffer() == 0  # nothing started yet
    _started(pace, 50)
    clock.now += WINDOW + 1  # those are too old to count now
    _started(pace, 100)  # 1,000 starts a second: 20 ms of them
    assert pace.buffer() == 20
    _started(pace, 1000)
    assert pace.buffer() == 64  # the limit


def test_slow_flushes_make_the_horizon_longer() -> None:
    clock = Clock()
    pace = Prefetch(64, clock=clock)
    _started(pace, 100)
    assert pace.buffer(refill=0.025) == 50  # two 25 ms flushes ahead
    assert pace.buffer(refill=0.005) == 20  # quick flushes: the horizon's floor


def test_a_slow_pace_keeps_nothing_claimed_ahead() -> None:
    clock = Clock()
    pace = Prefetch(64, clock=clock)
    pace.started()  # a start every tenth of a second
    assert pace.buffer() == 0
    _started(pace, 2)  # 30 a second: 0.6 in the horizon
    assert pace.buffer() == 1
    clock.now += WINDOW * 2
    assert pace.buffer() == 0


def test_want_is_free_slots_plus_the_buffer_less_what_is_ready() -> None:
    clock = Clock()
    pace = Prefetch(64, clock=clock)
    _started(pace, 100)
    assert pace.want(idle=2, ready=0) == 22
    assert pace.want(idle=0, ready=30) == -10
    off = Prefetch(0, clock=clock)
    _started(off, 100)
    assert (off.buffer(), off.want(idle=1, ready=0)) == (0, 1)
