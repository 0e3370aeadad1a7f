"""A pipeline run's rows as its recorder writes them: the batches and the
row builders, without SQLAlchemy.

:mod:`~stockade.store.runs` writes them through Core and
:mod:`~stockade.store.literuns` straight on ``sqlite3`` (``stockade run`` on
SQLite imports no SQLAlchemy); both build every row and every change here,
so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stockade.errors import StoreError
from stockade.store.states import (
    RUN_TERMINAL,
    JobState,
    RunState,
    check,
    check_birth,
    check_run,
)

if TYPE_CHECKING:
    from stockade.store.runrecords import RunRecord, TestRecord
from stockade.store.usage import usage_columns

__all__ = [
    "ABANDONED_AFTER", "ABANDONED_REASON", "HEARTBEAT", "LIVE", "AttemptWrite", "JobWrite",
    "RunBatch", "RunRecord", "TestRecord", "attempt_row", "batch_rows", "job_row", "move_row",
    "run_changes", "run_row",
]  # fmt: skip

#: The ends of a run that ran (a queued run may also be cancelled before it starts).
RAN = frozenset({RunState.SUCCEEDED, RunState.FAILED})
LIVE = (RunState.QUEUED.value, RunState.RUNNING.value)

#: Seconds between the writes of a live run's process (its heartbeat).
HEARTBEAT = 5.0
#: Seconds of silence after which a live run is taken for abandoned.
ABANDONED_AFTER = 60.0
ABANDONED_REASON = "abandoned: its stockade run process stopped reporting"
#: Longest ``reason`` a job row holds; a longer text goes to ``error``.
REASON_LEN = 64


@dataclass
class AttemptWrite:
    """One attempt of a run's job: started (``new``), ended, or both."""

    attempt: int
    started_at: float
    new: bool = True
    finished_at: float | None = None
    outcome: str | None = None
    reason: str | None = None
    exit_code: int | None = None
    error: str | None = None
    #: The parts of the runner's result a run keeps: ``usage`` and ``dump``.
    result: dict[str, Any] | None = None


@dataclass
class JobWrite:
    """A run's job as one flush writes it.

    ``stored`` is the state the store has (``None``: the job's first write);
    ``state`` the one to write. Fields of the frozen task matter only on the
    first write.
    """

    id: str
    step: str
    item: str | None
    state: JobState
    stored: JobState | None = None
    task: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    input: Any = None
    priority: int = 0
    max_attempts: int = 1
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    outcome: str | None = None
    reason: str | None = None
    error: str | None = None
    exit_code: int | None = None
    outputs: dict[str, Any] | None = None
    attempt_rows: list[AttemptWrite] = field(default_factory=list)


@dataclass
class RunBatch:
    """Everything one flush of a run's recorder writes, in one transaction."""

    run_id: str
    jobs: list[JobWrite] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    #: The run's new state (``None``: unchanged), with the state it had.
    state: RunState | None = None
    stored: RunState | None = None
    steps: dict[str, Any] | None = None
    test_counts: dict[str, int] | None = None
    reason: str | None = None
    #: The run's warnings so far (``None``: unchanged).
    warnings: list[str] | None = None

    def __bool__(self) -> bool:
        return bool(
            self.jobs or self.logs or self.tests or self.state or self.steps is not None
            or self.warnings is not None
        )  # fmt: skip


def __getattr__(name: str) -> Any:
    """:class:`RunRecord` and :class:`TestRecord`, the records a run is read
    back as, loaded on first use from :mod:`~stockade.store.runrecords`: a
    run's recorder never reads a run back, so it does not build their classes."""
    if name in ("RunRecord", "TestRecord"):
        from stockade.store import runrecords

        return getattr(runrecords, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def job_row(job: JobWrite, run_id: str, now: float) -> dict[str, Any]:
    """The first write of a run's job: its ``jobs`` row."""
    check_birth("run", job.state)
    started = job.started_at or now
    policy = {"backoff_initial": 0.0, "backoff_multiplier": 1.0, "backoff_max": 0.0}
    return {
        "id": job.id, "task": job.task or job.step, "state": job.state.value,
        "priority": job.priority, "input": job.input, "spec": job.spec,
        "max_attempts": job.max_attempts, "attempts": job.attempts, "runs": job.attempts,
        "transient": 0, "on_timeout": "fail", "run_after": started, "created_at": started,
        "updated_at": now, "started_at": job.started_at, "finished_at": job.finished_at,
        "worker_id": None, "lease_expires": None, "cancel_requested": False,
        "run_id": run_id, "step": job.step, "item": job.item, **policy, **summary(job),
    }  # fmt: skip


def summary(job: JobWrite) -> dict[str, Any]:
    reason, error = job.reason, job.error
    if reason is not None and len(reason) > REASON_LEN:
        reason, error = reason[:REASON_LEN], error or reason
    return {
        "outcome": job.outcome, "reason": reason, "error": error,
        "exit_code": job.exit_code, "signal": None,
    }  # fmt: skip


def move_row(job: JobWrite) -> dict[str, Any]:
    """A later write of a run's job: the fenced ``stored → state`` move."""
    assert job.stored is not None
    if job.state is not job.stored:
        check(job.stored, job.state)
    changed = {f"b_{k}": v for k, v in summary(job).items() if k != "signal"}
    return {
        "b_id": job.id, "b_from": job.stored.value, "b_state": job.state.value,
        "b_attempts": job.attempts, "b_finished": job.finished_at, **changed,
    }  # fmt: skip


def attempt_row(job_id: str, run_id: str, row: AttemptWrite) -> dict[str, Any]:
    duration = None if row.finished_at is None else row.finished_at - row.started_at
    cpu, memory = usage_columns(row.result)
    return {
        "job_id": job_id, "attempt": row.attempt, "worker_id": f"run:{run_id}",
        "started_at": row.started_at, "finished_at": row.finished_at, "outcome": row.outcome,
        "reason": None if row.reason is None else row.reason[:REASON_LEN],
        "exit_code": row.exit_code, "signal": None, "error": row.error, "duration": duration,
        "result": row.result, "cpu_seconds": cpu, "memory_bytes": memory,
    }  # fmt: skip


@dataclass
class BatchRows:
    """The rows one :class:`RunBatch` writes, table by table (``moves`` and
    ``ended`` keyed ``b_*``, as the fenced updates bind them)."""

    births: list[dict[str, Any]]
    moves: list[dict[str, Any]]
    started: list[dict[str, Any]]
    ended: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    events: list[dict[str, Any]]
    tests: list[dict[str, Any]]


def batch_rows(batch: RunBatch, now: float) -> BatchRows:
    """Every row ``batch`` inserts or updates, checked against the state machine."""
    rows = [(j.id, row) for j in batch.jobs for row in j.attempt_rows]
    ended = [
        {f"b_{k}": v for k, v in attempt_row(jid, batch.run_id, row).items()}
        for jid, row in rows
        if not row.new
    ]
    events = [
        {"job_id": j.id, "kind": "started" if j.state is JobState.RUNNING else "finished",
         "attempt": j.attempts or None, "time": now,
         "data": {"run": batch.run_id, "state": j.state.value}}
        for j in batch.jobs
        if j.stored is not j.state
    ]  # fmt: skip
    return BatchRows(
        births=[job_row(j, batch.run_id, now) for j in batch.jobs if j.stored is None],
        moves=[move_row(j) for j in batch.jobs if j.stored is not None],
        started=[attempt_row(jid, batch.run_id, row) for jid, row in rows if row.new],
        ended=[{**row, "b_id": row["b_job_id"]} for row in ended],
        outputs=[
            {"job_id": j.id, "attempt": max(j.attempts, 1), "data": j.outputs}
            for j in batch.jobs
            if j.state is JobState.SUCCEEDED and j.outputs is not None
        ],
        events=events,
        tests=[{**test, "run_id": batch.run_id} for test in batch.tests],
    )


def run_row(
    run_id: str,
    pipeline: str,
    options: dict[str, Any],
    steps: dict[str, Any],
    source_run: str | None,
    state: RunState,
    now: float,
) -> dict[str, Any]:
    """A new run's row, ``queued`` (started by a server) or ``running``."""
    if state not in (RunState.QUEUED, RunState.RUNNING):
        raise StoreError(f"a run cannot start as {state.value}")
    return {
        "id": run_id, "pipeline": pipeline, "state": state.value, "created_at": now,
        "updated_at": now, "started_at": now if state is RunState.RUNNING else None,
        "options": options, "steps": steps, "tests": {}, "cancel_requested": False,
        "source_run": source_run,
    }  # fmt: skip


def run_changes(batch: RunBatch, stored: RunState, now: float) -> dict[str, Any]:
    """The columns of the run's row that ``batch`` changes (``{}``: none),
    its state move checked; ``updated_at`` is the caller's."""
    values: dict[str, Any] = {}
    if batch.state is not None and batch.state is not stored:
        if stored is RunState.QUEUED and batch.state in RAN:
            # it started and ended between two writes: both edges, one write
            check_run(stored, RunState.RUNNING)
            check_run(RunState.RUNNING, batch.state)
        else:
            check_run(stored, batch.state)
        values["state"] = batch.state.value
        if stored is RunState.QUEUED and batch.state is not RunState.CANCELLED:
            values["started_at"] = now
        if batch.state in RUN_TERMINAL:
            values["finished_at"] = now
    if batch.steps is not None:
        values["steps"] = batch.steps
    if batch.test_counts is not None:
        values["tests"] = batch.test_counts
    if batch.reason is not None:
        values["reason"] = batch.reason[:200]
    if batch.warnings is not None:
        values["warnings"] = [w[:2000] for w in batch.warnings[:100]]
    return values
