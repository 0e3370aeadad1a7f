"""A job's life inside a worker (pure: no processes, no store)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from stockade.engine.jobstate import Phase, PhaseError, Running
from stockade.store import Claim

_LIVES = [
    [Phase.STAGED, Phase.LAUNCHED, Phase.RECORDING, Phase.DONE],  # behind a busy slot
    [Phase.LAUNCHED, Phase.RECORDING, Phase.DONE],  # an idle slot
    [Phase.STAGED, Phase.RECORDING, Phase.DONE],  # stopped before its turn came
    [Phase.DONE],  # given back unstarted
]


def _job() -> Running:
    claim = Claim(
        job_id="j1", task="t", spec={}, input=None, priority=0, run=1, attempts=1,
        max_attempts=3, transient=0, backoff_initial=1.0, backoff_multiplier=2.0,
        backoff_max=60.0, on_timeout="fail", started_at=0.0,
    )  # fmt: skip
    return Running(claim)


def _in_a_loop(test: Callable[[], None]) -> None:
    """Run ``test`` where a :class:`~stockade.runner.cancel.Stop` can be made."""

    async def body() -> None:
        test()

    asyncio.run(body())


@pytest.mark.parametrize(
    "life", _LIVES, ids=["staged", "idle-slot", "stopped-staged", "given-back"]
)
def test_every_life_a_worker_gives_a_job_is_allowed(life: list[Phase]) -> None:
    def test() -> None:
        job = _job()
        assert job.phase is Phase.CLAIMED and not job.recording
        for phase in life:
            job.advance(phase)
            job.advance(phase)  # staying put is allowed
        assert job.phase is Phase.DONE and job.recording

    _in_a_loop(test)


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([Phase.LAUNCHED], Phase.STAGED),  # a launched job is never staged again
        ([Phase.LAUNCHED, Phase.RECORDING], Phase.LAUNCHED),  # recorded, then run again
        ([Phase.DONE], Phase.RECORDING),  # recorded twice
        ([], Phase.RECORDING),  # recorded before it had a slot
    ],
)
def test_a_move_its_life_does_not_have_fails_loudly(path: list[Phase], bad: Phase) -> None:
    def test() -> None:
        job = _job()
        for phase in path:
            job.advance(phase)
        with pytest.raises(PhaseError, match=f"job j1: cannot go from .* to {bad.value}"):
            job.advance(bad)

    _in_a_loop(test)


def test_a_job_being_recorded_is_not_interrupted() -> None:
    def test() -> None:
        job = _job()
        job.advance(Phase.LAUNCHED)
        job.stop("cancel")
        assert job.interrupt == "cancel" and job.cancel.requested.done()
        other = _job()
        other.advance(Phase.LAUNCHED)
        other.advance(Phase.RECORDING)
        other.stop("cancel", force=True)
        assert other.interrupt is None and not other.cancel.requested.done()

    _in_a_loop(test)
