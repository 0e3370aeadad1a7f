"""Pure policies: backoff and the next state after an attempt."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.errors import StoreError
from stockade.runner.policy import backoff_delay
from stockade.runner.result import Outcome
from stockade.store.policy import Step, next_step
from stockade.store.states import ALLOWED, JobState, check


def test_backoff_grows_and_is_capped() -> None:
    delays = [backoff_delay(n, initial=1, multiplier=2, cap=10, jitter=0) for n in range(0, 7)]
    assert delays == [0.0, 1, 2, 4, 8, 10, 10]


@given(
    retry=st.integers(min_value=1, max_value=10_000),
    initial=st.floats(min_value=0, max_value=1e6),
    multiplier=st.floats(min_value=1, max_value=100),
    cap=st.floats(min_value=0, max_value=1e6),
    jitter=st.floats(min_value=0, max_value=1),
    rand=st.floats(min_value=0, max_value=1),
)
def test_backoff_bounds(
    retry: int, initial: float, multiplier: float, cap: float, jitter: float, rand: float
) -> None:
    full = backoff_delay(retry, initial=initial, multiplier=multiplier, cap=cap, jitter=0)
    delay = backoff_delay(
        retry, initial=initial, multiplier=multiplier, cap=cap, jitter=jitter, rand=rand
    )
    assert 0 <= delay <= full <= cap
    assert delay >= full * (1 - jitter) - 1e-9


@pytest.mark.parametrize(
    ("outcome", "attempts", "on_timeout", "cancel", "expected"),
    [
        (Outcome.SUCCEEDED, 3, "fail", True, Step(JobState.SUCCEEDED)),
        (Outcome.FAILED, 1, "fail", False, Step(JobState.FAILED)),
        (Outcome.RETRYABLE, 1, "fail", False, Step(JobState.QUEUED, retry=1)),
        (Outcome.RETRYABLE, 3, "fail", False, Step(JobState.FAILED)),
        (Outcome.RETRYABLE, 1, "fail", True, Step(JobState.CANCELLED)),
        (Outcome.TIMED_OUT, 1, "fail", False, Step(JobState.FAILED)),
        (Outcome.TIMED_OUT, 2, "retry", False, Step(JobState.QUEUED, retry=2)),
        (Outcome.TIMED_OUT, 3, "retry", False, Step(JobState.FAILED)),
        (Outcome.LOST, 2, "fail", False, Step(JobState.QUEUED, retry=2)),
        (Outcome.LOST, 3, "fail", False, Step(JobState.FAILED)),
        (Outcome.CANCELLED, 1, "fail", False, Step(JobState.CANCELLED)),
    ],
)
def test_next_step(
    outcome: Outcome, attempts: int, on_timeout: str, cancel: bool, expected: Step
) -> None:
    got = next_step(
        outcome, attempts=attempts, max_attempts=3, on_timeout=on_timeout, cancel_requested=cancel
    )
    assert got == expected


def test_only_listed_transitions_pass() -> None:
    for source in JobState:
        for target in JobState:
            if target in ALLOWED[source]:
                check(source, target)
            else:
                with pytest.raises(StoreError, match="cannot go from"):
                    check(source, target)
