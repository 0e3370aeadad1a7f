"""Job states and the only transitions between them.

DESIGN.md, "Job states": ``queued → running → (succeeded | failed |
cancelled | queued again for a retry)``; a queued job may also be
cancelled before it starts. ``stockade retry`` adds one edge a user asks
for by hand: a failed or cancelled job back to ``queued``. Every UPDATE of
``jobs.state`` in the job manager goes through :func:`check` with the
state it expects in its WHERE clause, so a transition not listed here
cannot happen, and one that raced with another does nothing.
"""

from __future__ import annotations

from enum import StrEnum

from stockade.errors import StoreError

__all__ = ["ALLOWED", "TERMINAL", "JobState", "check"]


class JobState(StrEnum):
    """Where a job is."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED}),
    JobState.RUNNING: frozenset(
        {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.QUEUED}
    ),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),
    JobState.SUCCEEDED: frozenset(),
}


def check(source: JobState, target: JobState) -> None:
    """Raise :class:`StoreError` unless ``source → target`` is a transition."""
    if target not in ALLOWED[source]:
        raise StoreError(f"a job cannot go from {source.value} to {target.value}")
