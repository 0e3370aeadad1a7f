"""Why an attempt or a job ended: the one set of reasons every layer uses.

The runner sets the reasons of an attempt it ran; the engine and the store
set those of attempts and jobs that ended without the runner (a worker gone,
a job that could not be read, a cancel before the start). ``docs/reasons.md``
is the table of what each means. A :class:`Reason` is a ``str``, so it is
stored and compared as its value.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Reason", "parse_reason"]


class Reason(StrEnum):
    """Why an attempt or job ended (``result.reason``, ``jobs.reason``, ``attempts.reason``)."""

    # The job ran and ended by itself.
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYABLE = "retryable"
    SIGNAL = "signal"
    OOM = "oom"
    OUTPUT_ERROR = "output_error"
    # stockade stopped it.
    TIMEOUT = "timeout"
    IDLE_TIMEOUT = "idle_timeout"
    CANCELLED = "cancelled"
    CANCELLED_BY_USER = "cancelled_by_user"
    SUPERSEDED = "superseded"
    # It never ran, or not to its end, through no fault of its own code.
    LAUNCH_ERROR = "launch_error"
    INVALID_JOB = "invalid_job"
    INFRASTRUCTURE = "infrastructure"
    WORKER_SHUTDOWN = "worker_shutdown"
    WORKER_RESTARTED = "worker_restarted"
    LEASE_EXPIRED = "lease_expired"
    ABANDONED = "abandoned"
    # A job submitted --after others, one of which did not succeed.
    DEPENDENCY_FAILED = "dependency_failed"
    # A pipeline's job that did not run.
    SKIPPED = "skipped"
    CACHED = "cached"
    REUSED = "reused"


_BY_VALUE = {reason.value: reason for reason in Reason}


def parse_reason(text: str | None) -> Reason | None:
    """The :class:`Reason` of a stored value; ``None`` for none or an unknown one."""
    return None if text is None else _BY_VALUE.get(text)
