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
from dataclasses import fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stockade.errors import RunNotFound, StoreError
from stockade.reasons import Reason
from stockade.store import schema as t
from stockade.store.base import notify_logs
from stockade.store.database import Database
from stockade.store.queries import newest_first, resolve_id
from stockade.store.records import JobRecord
from stockade.store.runrecords import RunRecord, TestRecord
from stockade.store.runrows import (
    ABANDONED_AFTER,
    ABANDONED_REASON,
    HEARTBEAT,
    LIVE,
    AttemptWrite,
    JobWrite,
    RunBatch,
    batch_rows,
    run_changes,
    run_row,
)
from stockade.store.schema import epoch_now
from stockade.store.states import RUN_TERMINAL, JobState, RunState, check_run

__all__ = [
    "ABANDONED_AFTER", "HEARTBEAT", "AttemptWrite", "JobWrite", "RunBatch", "RunRecord", "RunStore",
    "TestRecord",
]  # fmt: skip

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
        with self.db.transaction() as conn:
            now = conn.execute(sa.select(epoch_now())).scalar_one()
            conn.execute(
                t.runs.insert().values(
                    run_row(run_id, pipeline, options, steps, source_run, state, now)
                )
            )

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
            self._run(conn, batch, stored, now)
            # Followers of these jobs' logs (SSE on PostgreSQL) wake on commit:
            # new output, or a job that moved (and may have ended).
            touched = {chunk["job_id"] for chunk in batch.logs} | {j.id for j in batch.jobs}
            if touched:
                notify_logs(self.db, conn, touched)
        return cancel

    def _jobs(self, conn: Connection, batch: RunBatch, now: float) -> None:
        """Births, moves, attempts, outputs and events of the batch's jobs."""
        rows = batch_rows(batch, now)
        if rows.births:
            conn.execute(t.jobs.insert(), rows.births)
        if rows.moves:
            matched = conn.execute(_MOVE, rows.moves).rowcount
            if conn.dialect.supports_sane_multi_rowcount and matched != len(rows.moves):
                raise StoreError(f"recording {len(rows.moves)} job(s) of a run matched {matched}")
        if rows.started:
            conn.execute(t.attempts.insert(), rows.started)
        if rows.ended:
            conn.execute(_END_ATTEMPT, rows.ended)
        if rows.outputs:
            conn.execute(t.outputs.insert(), rows.outputs)
        if rows.events:
            conn.execute(t.events.insert(), rows.events)
        if rows.tests:
            conn.execute(t.run_tests.insert(), rows.tests)

    def _run(self, conn: Connection, batch: RunBatch, stored: RunState, now: float) -> None:
        values = run_changes(batch, stored, now)
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
                .where(runs.c.id == run_id, runs.c.state.in_(LIVE))
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
        stale = sa.and_(runs.c.state.in_(LIVE), runs.c.updated_at < epoch_now() - silent_for)
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
