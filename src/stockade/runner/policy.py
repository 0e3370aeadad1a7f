"""Pure policies shared by every path that runs jobs: whether an attempt's end
is retried, the delay before a retry, and the exit status a command reports.

Implemented once here and used by the store (a worker's jobs), the pipeline
scheduler (``stockade run``), ``stockade exec`` and ``stockade submit
--wait``, so they cannot disagree. No I/O and no clock: randomness comes in
as an argument, so each is tested exhaustively without processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from stockade.reasons import Reason
from stockade.runner.result import Outcome

__all__ = ["DEFAULT_JITTER", "RetryPolicy", "backoff_delay", "exit_status", "retries"]

#: Fraction of a retry delay taken off at random, so that jobs which failed
#: together do not all come back in the same instant.
DEFAULT_JITTER = 0.25


def retries(outcome: Outcome, *, attempts: int, max_attempts: int, on_timeout: str) -> bool:
    """Whether an attempt that ended with ``outcome`` is followed by another.

    ``attempts`` is the number spent, this one included. Retryable exit codes
    and lost attempts are retried, a timeout only with ``on_timeout: retry``,
    and never past ``max_attempts``.
    """
    retryable = outcome in (Outcome.RETRYABLE, Outcome.LOST) or (
        outcome is Outcome.TIMED_OUT and on_timeout == "retry"
    )
    return retryable and attempts < max_attempts


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
class RetryPolicy:
    """A task's retry policy as plain data, for a path without a store
    (``stockade exec TASK``): the worker's jobs carry the same fields."""

    max_attempts: int = 1
    initial: float = 1.0
    multiplier: float = 2.0
    cap: float = 300.0
    on_timeout: str = "fail"

    def next_delay(self, outcome: Outcome, *, attempts: int, rand: float = 1.0) -> float | None:
        """Seconds before the next attempt after ``attempts`` spent, the last
        ending with ``outcome``; ``None`` when there is none
        (:func:`retries`, then :func:`backoff_delay`, as a worker's jobs)."""
        if not retries(
            outcome, attempts=attempts, max_attempts=self.max_attempts, on_timeout=self.on_timeout
        ):
            return None
        return backoff_delay(
            attempts, initial=self.initial, multiplier=self.multiplier, cap=self.cap, rand=rand
        )


def exit_status(
    outcome: Outcome | None, *, exit_code: int | None, signal: int | None, reason: str | None
) -> int:
    """The status a command reports for a job's end, like a shell's.

    ``0`` succeeded; ``124`` timed out (as ``timeout(1)``); ``128+N`` killed
    by signal N; the job's own code (``1`` when it exited 0 but did not
    succeed, its outputs unreadable for instance); ``127`` for a command
    that could not be started (``launch_error``); ``1`` otherwise
    (cancelled before it started, failed without an exit code).
    """
    if outcome is Outcome.SUCCEEDED:
        return 0
    if outcome is Outcome.TIMED_OUT:
        return 124
    if signal is not None:
        return 128 + signal
    if exit_code is not None:
        return exit_code or 1
    if reason == Reason.LAUNCH_ERROR:
        return 127
    return 1
