"""What an attempt's end means for a stored job: its next state.

The retry rule and the backoff are :mod:`stockade.runner.policy`'s, shared
with the pipeline scheduler and the CLI; this adds the job's states and the
cap on infrastructure failures. No I/O and no clock. The job manager applies
it inside the transaction that records an attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

from stockade.runner.policy import retries
from stockade.runner.result import Outcome
from stockade.store.states import JobState

__all__ = ["MAX_TRANSIENT", "Step", "next_step"]

#: Infrastructure failures returned without spending an attempt, per job;
#: past this they spend attempts like any retryable failure, so a job whose
#: every start trips the infrastructure still ends.
MAX_TRANSIENT = 10


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
    if retries(outcome, attempts=attempts, max_attempts=max_attempts, on_timeout=on_timeout):
        return Step(JobState.QUEUED, retry=attempts)
    return Step(JobState.FAILED)
