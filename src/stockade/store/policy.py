"""Pure policies: the delay before a retry, and what an attempt's end means.

No I/O and no clock here, so both can be tested exhaustively. The job
manager applies them inside the transaction that records an attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

from stockade.runner.result import Outcome
from stockade.store.states import JobState

__all__ = ["DEFAULT_JITTER", "MAX_TRANSIENT", "Step", "backoff_delay", "next_step"]

#: Fraction of a retry delay taken off at random, so that jobs which failed
#: together do not all come back in the same instant.
DEFAULT_JITTER = 0.25

#: Infrastructure failures returned without spending an attempt, per job;
#: past this they spend attempts like any retryable failure, so a job whose
#: every start trips the infrastructure still ends.
MAX_TRANSIENT = 10


def backoff_delay(
    retry: int,
    *,
    initial: float,
    multiplier: float,
    cap: float,
    jitter: float = DEFAULT_JITTER,
    rand: float = 1.0,
) -> float:
    """Seconds before retry number ``retry`` (1 for the first retry).

    ``min(cap, initial * multiplier**(retry-1))``, then up to ``jitter`` of it
    taken off: ``rand`` in ``[0, 1]`` (1 takes nothing off). Never negative,
    never above ``cap``.
    """
    if retry < 1:
        return 0.0
    exponent = min(retry - 1, 1000)  # past this the cap has long won; avoid overflow
    try:
        base = initial * multiplier**exponent
    except OverflowError:
        base = cap
    delay = min(cap, base)
    rand = min(max(rand, 0.0), 1.0)
    return max(0.0, delay * (1.0 - jitter * (1.0 - rand)))


@dataclass(frozen=True)
class Step:
    """What to do with a job after an attempt: its next state and, for a
    retry, the retry number the backoff is computed for."""

    state: JobState
    retry: int = 0


def next_step(
    outcome: Outcome,
    *,
    attempts: int,
    max_attempts: int,
    on_timeout: str,
    cancel_requested: bool = False,
) -> Step:
    """The job's next state once an attempt ended with ``outcome``.

    ``attempts`` is the number spent, this one included (it was counted
    when the job was claimed). A lost attempt counts, so a job that keeps
    killing its worker still fails after ``max_attempts``. A cancel that was
    asked for wins over a retry.
    """
    if outcome is Outcome.SUCCEEDED:
        return Step(JobState.SUCCEEDED)
    if outcome is Outcome.CANCELLED or cancel_requested:
        return Step(JobState.CANCELLED)
    retryable = outcome in (Outcome.RETRYABLE, Outcome.LOST) or (
        outcome is Outcome.TIMED_OUT and on_timeout == "retry"
    )
    if retryable and attempts < max_attempts:
        return Step(JobState.QUEUED, retry=attempts)
    return Step(JobState.FAILED)
