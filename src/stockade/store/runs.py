"""Pipeline runs: their rows, their jobs' rows, their test results.

A run is executed by its scheduler in one process (``stockade run``, or the
HTTP service); this module records what that scheduler reports and reads it
back for the faces. Writes come in batches (:class:`RunBatch`): everything a
run's recorder gathered since its last flush is written in one transaction,
so a 200-job pipeline costs a few dozen commits, not thousands. Every state
change of a run's job or of the run itself is checked against
:mod:`~stockade.store.states` and fenced by the state it expects, as the job
manager does for submitted jobs. The same transaction reads the run's
``cancel_requested`` flag, so a running scheduler learns of a cancel asked
by another process (the HTTP API, ``stockade runs cancel``) at its next flush.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from stockade.errors import RunNotFound, StoreError
from stockade.reasons import Reason
from stockade.store import schema as t
from stockade.store.base import notify_logs
from stockade.store.database import Database
from stockade.store.queries import newest_first, resolve_id
from stockade.store.records import JobRecord
from stockade.store.rows import usage_columns
from stockade.store.schema import epoch_now
from stockade.store.states import (
    RUN_TERMINAL,
    JobState,
    RunState,
    check,
    check_birth,
    check_run,
)

__all__ = [
    "ABANDONED_AFTER", "HEARTBEAT", "AttemptWrite", "JobWrite", "RunBatch", "RunRecord", "RunStore",
    "TestRecord",
]  # fmt: skip

#: The ends of a run that ran (a queued run may also be cancelled before it starts).
_RAN = frozenset({RunState.SUCCEEDED, RunState.FAILED})
_LIVE = (RunState.QUEUED.value, RunState.RUNNING.value)

#: Seconds between the writes of a live run's process (its heartbeat).
HEARTBEAT = 5.0
#: Seconds of silence after which a live run is taken for abandoned.
ABANDONED_AFTER = 60.0
ABANDONED_REASON = "abandoned: its stockade run process stopped reporting"
#: Longest ``reason`` a job row holds; a longer text goes to ``error``.
_REASON_LEN = 64


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


@dataclass
class RunRecord:
    """A run as stored."""

    id: str
    pipeline: str
    state: RunState
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    options: dict[str, Any]
    steps: dict[str, Any]
    tests: dict[str, int]
    reason: str | None
    cancel_requested: bool
    source_run: str | None
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: RowMapping) -> RunRecord:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["state"] = RunState(values["state"])
        values["cancel_requested"] = bool(values["cancel_requested"])
        values["warnings"] = [str(w) for w in values["warnings"] or []]
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data


@dataclass
class TestRecord:
    """One test result of a run (``output`` kept for failed tests)."""

    __test__ = False  # not a pytest class

    job_id: str | None
    package: str
    test: str
    status: str
    elapsed: float
    output: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _job_row(job: JobWrite, run_id: str, now: float) -> dict[str, Any]:
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
        "run_id": run_id, "step": job.step, "item": job.item, **policy, **_summary(job),
    }  # fmt: skip


def _summary(job: JobWrite) -> dict[str, Any]:
    reason, error = job.reason, job.error
    if reason is not None and len(reason) > _REASON_LEN:
        reason, error = reason[:_REASON_LEN], error or reason
    return {
        "outcome": job.outcome, "reason": reason, "error": error,
        "exit_code": job.exit_code, "signal": None,
    }  # fmt: skip


_MOVE = (
    sa.update(t.jobs)
    .where(
        t.jobs.c.id == sa.bindparam("b_id", type_=sa.String),
        t.jobs.c.state == sa.bindparam("b_from", type_=sa.String),
    )
    .values(
        state=sa.bindparam("b_state", type_=sa.String),
        attempts=sa.bindparam("b_attempts", type_=sa.Integer),
        runs=sa.bindparam("b_attempts", type_=sa.Integer),
        finished_at=sa.bindparam("b_finished", type_=t.jobs.c.finished_at.type),
        updated_at=epoch_now(),
        **{
            k: sa.bindparam(f"b_{k}", type_=t.jobs.c[k].type)
            for k in ("outcome", "reason", "error", "exit_code")
        },
    )
)
_END_ATTEMPT = (
    sa.update(t.attempts)
    .where(
        t.attempts.c.job_id == sa.bindparam("b_id", type_=sa.String),
        t.attempts.c.attempt == sa.bindparam("b_attempt", type_=sa.Integer),
    )
    .values(
        {
            k: sa.bindparam(f"b_{k}", type_=t.attempts.c[k].type)
            for k in (
                "finished_at",
                "outcome",
                "reason",
                "exit_code",
                "error",
                "duration",
                "result",
                "cpu_seconds",
                "memory_bytes",
            )
        }
    )
)


def _move_row(job: JobWrite) -> dict[str, Any]:
    """A later write of a run's job: the fenced ``stored → state`` move."""
    assert job.stored is not None
    if job.state is not job.stored:
        check(job.stored, job.state)
    summary = {f"b_{k}": v for k, v in _summary(job).items() if k != "signal"}
    return {
        "b_id": job.id, "b_from": job.stored.value, "b_state": job.state.value,
        "b_attempts": job.attempts, "b_finished": job.finished_at, **summary,
    }  # fmt: skip


def _attempt_row(job_id: str, run_id: str, row: AttemptWrite) -> dict[str, Any]:
    duration = None if row.finished_at is None else row.finished_at - row.started_at
    cpu, memory = usage_columns(row.result)
    return {
        "job_id": job_id, "attempt": row.attempt, "worker_id": f"run:{run_id}",
        "started_at": row.started_at, "finished_at": row.finished_at, "outcome": row.outcome,
        "reason": None if row.reason is None else row.reason[:_REASON_LEN],
        "exit_code": row.exit_code, "signal": None, "error": row.error, "duration": duration,
        "result": row.result, "cpu_seconds": cpu, "memory_bytes": memory,
    }  # fmt: skip


class RunStore:
    """Runs in and out; each public method one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writes --------------------------------------------------------------

    def create(
        self,
        run_id: str,
        pipeline: str,
        *,
        options: dict[str, Any],
        steps: dict[str, Any],
        source_run: str | None = None,
        state: RunState = RunState.QUEUED,
    ) -> None:
        """Record a new run, ``queued`` (started by a server) or ``running``."""
        if state not in (RunState.QUEUED, RunState.RUNNING):
            raise StoreError(f"a run cannot start as {state.value}")
        with self.db.transaction() as conn:
            now = conn.execute(sa.select(epoch_now())).scalar_one()
            conn.execute(
                t.runs.insert().values(
                    id=run_id, pipeline=pipeline, state=state.value, created_at=now,
                    updated_at=now, started_at=now if state is RunState.RUNNING else None,
                    options=options, steps=steps, tests={}, cancel_requested=False,
                    source_run=source_run,
                )
            )  # fmt: skip

    def record(self, batch: RunBatch) -> bool:
        """Write ``batch``; whether the run was asked to stop (its cancel flag)."""
        runs = t.runs
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(runs.c.state, runs.c.cancel_requested, epoch_now())
                .where(runs.c.id == batch.run_id)
                .with_for_update()
            ).first()
            if row is None:
                raise RunNotFound(batch.run_id)
            stored, cancel, now = RunState(row[0]), bool(row[1]), float(row[2])
            self._jobs(conn, batch, now)
            if batch.logs:
                conn.execute(t.log_chunks.insert(), batch.logs)
            if batch.tests:
                conn.execute(
                    t.run_tests.insert(), [{**test, "run_id": batch.run_id} for test in batch.tests]
                )
            self._run(conn, batch, stored, now)
            # Followers of these jobs' logs (SSE on PostgreSQL) wake on commit:
            # new output, or a job that moved (and may have ended).
            touched = {chunk["job_id"] for chunk in batch.logs} | {j.id for j in batch.jobs}
            if touched:
                notify_logs(self.db, conn, touched)
        return cancel

    def _jobs(self, conn: Connection, batch: RunBatch, now: float) -> None:
        """Births, moves, attempts, outputs and events of the batch's jobs."""
        births = [_job_row(j, batch.run_id, now) for j in batch.jobs if j.stored is None]
        if births:
            conn.execute(t.jobs.insert(), births)
        moves = [_move_row(j) for j in batch.jobs if j.stored is not None]
        if moves:
            matched = conn.execute(_MOVE, moves).rowcount
            if conn.dialect.supports_sane_multi_rowcount and matched != len(moves):
                raise StoreError(f"recording {len(moves)} job(s) of a run matched {matched}")
        rows = [(j.id, row) for j in batch.jobs for row in j.attempt_rows]
        started = [_attempt_row(jid, batch.run_id, row) for jid, row in rows if row.new]
        if started:
            conn.execute(t.attempts.insert(), started)
        ended = [
            {f"b_{k}": v for k, v in _attempt_row(jid, batch.run_id, row).items()}
            for jid, row in rows
            if not row.new
        ]
        if ended:
            conn.execute(_END_ATTEMPT, [{**row, "b_id": row["b_job_id"]} for row in ended])
        outputs = [
            {"job_id": j.id, "attempt": max(j.attempts, 1), "data": j.outputs}
            for j in batch.jobs
            if j.state is JobState.SUCCEEDED and j.outputs is not None
        ]
        if outputs:
            conn.execute(t.outputs.insert(), outputs)
        events = [
            {"job_id": j.id, "kind": "started" if j.state is JobState.RUNNING else "finished",
             "attempt": j.attempts or None, "time": now,
             "data": {"run": batch.run_id, "state": j.state.value}}
            for j in batch.jobs
            if j.stored is not j.state
        ]  # fmt: skip
        if events:
            conn.execute(t.events.insert(), events)

    def _run(self, conn: Connection, batch: RunBatch, stored: RunState, now: float) -> None:
        values: dict[str, Any] = {}
        if batch.state is not None and batch.state is not stored:
            if stored is RunState.QUEUED and batch.state in _RAN:
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
        if not values:
            return
        runs = t.runs
        matched = conn.execute(
            sa.update(runs)
            .where(runs.c.id == batch.run_id, runs.c.state == stored.value)
            .values(updated_at=now, **values)
        ).rowcount
        if matched != 1:  # cannot happen: the row is locked
            raise StoreError(f"run {batch.run_id} changed while it was being recorded")

    def request_cancel(self, ref: str) -> tuple[str, str]:
        """Ask a run's scheduler to stop it; ``(run id, what happened)``:
        ``cancelling`` or ``already <state>``."""
        runs = t.runs
        with self.db.transaction() as conn:
            run_id = self._resolve(conn, ref)
            state = RunState(
                conn.execute(
                    sa.select(runs.c.state).where(runs.c.id == run_id).with_for_update()
                ).scalar_one()
            )
            if state in RUN_TERMINAL:
                return run_id, f"already {state.value}"
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id, runs.c.state == state.value)
                .values(cancel_requested=True, updated_at=epoch_now())
            )
        return run_id, "cancelling"

    # -- reads ---------------------------------------------------------------

    def _resolve(self, conn: Connection, ref: str) -> str:
        return resolve_id(conn, t.runs, ref, RunNotFound, "run")

    def run(self, ref: str) -> RunRecord:
        """One run by id or unique prefix; :class:`RunNotFound` if there is none."""
        with self.db.read() as conn:
            run_id = self._resolve(conn, ref)
            row = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).mappings().one()
        return RunRecord.from_row(row)

    def latest(self) -> RunRecord:
        """The newest run; :class:`RunNotFound` when there is none."""
        found = self.runs(limit=1)
        if not found:
            raise RunNotFound("latest")
        return found[0]

    def runs(
        self, *, limit: int | None = 50, after: str | None = None, pipeline: str | None = None
    ) -> list[RunRecord]:
        """Runs newest first; ``after`` a run id (the page before it ends there)."""
        runs = t.runs
        query = sa.select(runs)
        if pipeline:
            query = query.where(runs.c.pipeline == pipeline)
        query = newest_first(query, runs, after).limit(limit)
        with self.db.read() as conn:
            return [RunRecord.from_row(row) for row in conn.execute(query).mappings()]

    def jobs(self, run_id: str) -> list[JobRecord]:
        """The run's jobs in the order they were first recorded."""
        jobs = t.jobs
        query = (
            sa.select(jobs).where(jobs.c.run_id == run_id).order_by(jobs.c.created_at, jobs.c.id)
        )
        with self.db.read() as conn:
            return [JobRecord.from_row(row) for row in conn.execute(query).mappings()]

    def outputs(self, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``{job: outputs}`` of those of ``job_ids`` that succeeded."""
        ids = list(job_ids)
        if not ids:
            return {}
        query = sa.select(t.outputs.c.job_id, t.outputs.c.data).where(t.outputs.c.job_id.in_(ids))
        with self.db.read() as conn:
            return {jid: dict(data or {}) for jid, data in conn.execute(query)}

    def tests(self, run_id: str, *, status: str | None = None) -> list[TestRecord]:
        """The run's test results (only ``status`` ones, if given), in order."""
        table = t.run_tests
        query = sa.select(*[table.c[f.name] for f in fields(TestRecord)]).where(
            table.c.run_id == run_id
        )
        if status:
            query = query.where(table.c.status == status)
        with self.db.read() as conn:
            return [
                TestRecord(**row) for row in conn.execute(query.order_by(table.c.id)).mappings()
            ]

    def heartbeat(self, run_id: str) -> bool:
        """The run's process is alive: stamp ``updated_at`` (see
        :meth:`recover_abandoned`); whether the run was asked to stop."""
        runs = t.runs
        with self.db.transaction() as conn:
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id, runs.c.state.in_(_LIVE))
                .values(updated_at=epoch_now())
            )
            cancel = conn.execute(
                sa.select(runs.c.cancel_requested).where(runs.c.id == run_id)
            ).scalar_one_or_none()
        return bool(cancel)

    def recover_abandoned(self, silent_for: float = ABANDONED_AFTER) -> list[str]:
        """End the runs whose ``stockade run`` stopped reporting; their ids.

        A live run writes at least every :data:`HEARTBEAT` seconds. One that
        has been silent for ``silent_for`` lost its process (SIGKILL, a
        machine gone): it ends ``failed`` (``cancelled`` if it never
        started) with reason ``abandoned``, and its running jobs end
        ``failed`` with outcome ``lost``, so nothing shows as running
        forever. A cheap read when there is nothing to do.
        """
        runs, jobs, attempts = t.runs, t.jobs, t.attempts
        stale = sa.and_(runs.c.state.in_(_LIVE), runs.c.updated_at < epoch_now() - silent_for)
        with self.db.read() as conn:
            if not conn.execute(sa.select(runs.c.id).where(stale).limit(1)).first():
                return []
        with self.db.transaction() as conn:
            found = conn.execute(
                sa.select(runs.c.id, runs.c.state).where(stale).with_for_update()
            ).all()
            now = conn.execute(sa.select(epoch_now())).scalar_one()
            for run_id, state in found:
                target = RunState.FAILED if state == RunState.RUNNING.value else RunState.CANCELLED
                check_run(RunState(state), target)
                conn.execute(
                    sa.update(runs)
                    .where(runs.c.id == run_id, runs.c.state == state)
                    .values(state=target.value, reason=ABANDONED_REASON, finished_at=now,
                            updated_at=now)
                )  # fmt: skip
            ids = [run_id for run_id, _ in found]
            if ids:
                lost = sa.select(jobs.c.id).where(
                    jobs.c.run_id.in_(ids), jobs.c.state == JobState.RUNNING.value
                )
                conn.execute(
                    sa.update(attempts)
                    .where(attempts.c.job_id.in_(lost), attempts.c.finished_at.is_(None))
                    .values(outcome="lost", reason=Reason.ABANDONED, finished_at=now)
                )
                conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.run_id.in_(ids), jobs.c.state == JobState.RUNNING.value)
                    .values(state=JobState.FAILED.value, outcome="lost", reason=Reason.ABANDONED,
                            finished_at=now, updated_at=now)
                )  # fmt: skip
        return ids

    def cancel_requested(self, run_id: str) -> bool:
        """Whether someone asked the run to stop."""
        query = sa.select(t.runs.c.cancel_requested).where(t.runs.c.id == run_id)
        with self.db.read() as conn:
            return bool(conn.execute(query).scalar_one_or_none())
