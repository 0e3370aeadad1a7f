"""The shared policies, exhaustively, without processes: every face reports
the same exit status for the same end, and every path retries alike."""

from __future__ import annotations

import pytest

from stockade.runner.policy import RetryPolicy, backoff_delay, exit_status, retries
from stockade.runner.result import Outcome, Result, exit_status_for
from stockade.spec.task import Backoff


@pytest.mark.parametrize(
    ("outcome", "code", "signal", "reason", "status"),
    [
        (Outcome.SUCCEEDED, 0, None, None, 0),
        (Outcome.FAILED, 3, None, None, 3),
        (Outcome.FAILED, 0, None, "output_error", 1),  # exited 0, outputs unreadable
        (Outcome.TIMED_OUT, None, 15, "timeout", 124),
        (Outcome.CANCELLED, None, 15, "cancelled", 143),
        (Outcome.FAILED, None, 9, "signal", 137),
        (Outcome.FAILED, None, None, "launch_error", 127),
        (Outcome.CANCELLED, None, None, "cancelled", 1),
        (Outcome.LOST, None, None, "lost", 1),
        (None, None, None, None, 1),
    ],
)
def test_exit_status(
    outcome: Outcome | None, code: int | None, signal: int | None, reason: str | None, status: int
) -> None:
    assert exit_status(outcome, exit_code=code, signal=signal, reason=reason) == status
    if outcome is not None:  # exec's path gives the same for a Result
        result = Result("j", "t", 1, outcome, exit_code=code, signal=signal, reason=reason)
        assert exit_status_for(result) == status


@pytest.mark.parametrize(
    ("outcome", "attempts", "on_timeout", "again"),
    [
        (Outcome.RETRYABLE, 1, "fail", True),
        (Outcome.RETRYABLE, 3, "fail", False),  # the last attempt
        (Outcome.LOST, 2, "fail", True),
        (Outcome.TIMED_OUT, 1, "fail", False),
        (Outcome.TIMED_OUT, 1, "retry", True),
        (Outcome.FAILED, 1, "retry", False),
        (Outcome.SUCCEEDED, 1, "retry", False),
        (Outcome.CANCELLED, 1, "retry", False),
    ],
)
def test_retries(outcome: Outcome, attempts: int, on_timeout: str, again: bool) -> None:
    assert retries(outcome, attempts=attempts, max_attempts=3, on_timeout=on_timeout) is again


def test_a_pipelines_backoff_is_the_stores_without_jitter() -> None:
    backoff = Backoff(initial=2, multiplier=3, max=20)
    for retry in range(1, 6):
        assert backoff.delay(retry) == backoff_delay(
            retry, initial=2, multiplier=3, cap=20, jitter=0
        )
    assert [backoff.delay(r) for r in (1, 2, 3)] == [2, 6, 18]
    assert backoff.delay(4) == 20


def test_execs_retry_policy_is_the_workers() -> None:
    """``stockade exec TASK`` decides its next attempt with the worker's functions."""
    policy = RetryPolicy(max_attempts=3, initial=2, multiplier=3, cap=5, on_timeout="fail")
    assert policy.next_delay(Outcome.RETRYABLE, attempts=1) == 2
    assert policy.next_delay(Outcome.RETRYABLE, attempts=2) == 5  # capped
    assert policy.next_delay(Outcome.RETRYABLE, attempts=3) is None  # the last one
    assert policy.next_delay(Outcome.RETRYABLE, attempts=1, rand=0.0) == 1.5  # jitter
    assert policy.next_delay(Outcome.TIMED_OUT, attempts=1) is None
    assert policy.next_delay(Outcome.FAILED, attempts=1) is None
    assert RetryPolicy().next_delay(Outcome.RETRYABLE, attempts=1) is None  # once by default
