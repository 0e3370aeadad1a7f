"""Job states and the only transitions between them.

docs/design.md, "Job states": ``queued → running → (succeeded | failed |
cancelled | queued again for a retry)``; a queued job may also be
cancelled before it starts, or fail without running when a job it was
submitted ``--after`` did not succeed. ``stockade retry`` adds one edge a
user asks for by hand: a failed or cancelled job back to ``queued``. Every
UPDATE of ``jobs.state`` in the job manager goes through :func:`check` with the
state it expects in its WHERE clause, so a transition not listed here
cannot happen, and one that raced with another does nothing.

A job of a pipeline run is executed by its run's scheduler, never by a
worker, so it is never ``queued``: it is first written (:data:`BORN`) as
``running``, or already finished when the scheduler settled it before the
first write reached the store (``succeeded`` for a result it reused,
``cancelled`` with reason ``skipped`` for a job it skipped). Runs have a
table of their own (:data:`RUN_ALLOWED`), checked the same way.
"""

from __future__ import annotations

from enum import StrEnum

from stockade.errors import StoreError

__all__ = [
    "ALLOWED", "BORN", "RUN_ALLOWED", "RUN_TERMINAL", "TERMINAL", "JobState", "RunState",
    "check", "check_birth", "check_run",
]  # fmt: skip


class JobState(StrEnum):
    """Where a job is."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

ALLOWED: dict[JobState, frozenset[JobState]] = {
    # queued → failed: a dependency of a job submitted ``--after`` it failed.
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
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


#: The states a job may have when it is first written: ``queued`` for a
#: submitted job; for a pipeline run's job, whatever its scheduler knew of
#: it at the first write (it never waits in the queue).
BORN: dict[str, frozenset[JobState]] = {
    "submitted": frozenset({JobState.QUEUED}),
    "run": frozenset({JobState.RUNNING, *TERMINAL}),
}


def check_birth(kind: str, state: JobState) -> None:
    """Raise :class:`StoreError` unless a ``kind`` job may be first written as ``state``."""
    if state not in BORN[kind]:
        raise StoreError(f"a {kind} job cannot start as {state.value}")


class RunState(StrEnum):
    """Where a pipeline run is."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


RUN_TERMINAL = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED})

RUN_ALLOWED: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.CANCELLED}),
    RunState.RUNNING: RUN_TERMINAL,
    RunState.SUCCEEDED: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.CANCELLED: frozenset(),
}


def check_run(source: RunState, target: RunState) -> None:
    """Raise :class:`StoreError` unless a run may go ``source → target``."""
    if target not in RUN_ALLOWED[source]:
        raise StoreError(f"a run cannot go from {source.value} to {target.value}")
