"""The job manager: the one owner of every job state transition.

Each public method is one transaction. Every change of ``jobs.state`` is an
UPDATE whose WHERE clause names the state it expects (checked against
:data:`~stockade.store.states.ALLOWED` first), so a transition that raced
with another one matches no row and does nothing. Records of a run are
fenced by ``runs``, the attempt number taken at claim time: a worker whose
lease was taken over finds its job no longer ``running`` with its number,
and its late completion is dropped whole (nothing half-recorded).

Claiming is one ``UPDATE … RETURNING`` over a ``FOR UPDATE SKIP LOCKED``
candidate set on PostgreSQL; SQLite serializes writers (``BEGIN
IMMEDIATE``), so the same statement is safe there without row locks. The
attempt counter goes up in that same statement, before the job runs, so a
crash mid-job still counts as an attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stockade.runner.result import Outcome, Result
from stockade.store import schema as t
from stockade.store.base import CANCEL_CHANNEL, JOBS_CHANNEL
from stockade.store.ids import new_job_id
from stockade.store.policy import MAX_TRANSIENT, Step, backoff_delay, next_step
from stockade.store.records import Claim, NewJob
from stockade.store.requests import UserRequests
from stockade.store.rows import job_row, lost_claim, result_json, result_summary
from stockade.store.schema import epoch_now
from stockade.store.states import JobState, check

__all__ = ["CANCEL_CHANNEL", "JOBS_CHANNEL", "JobManager"]


Q, R = JobState.QUEUED, JobState.RUNNING
_CLAIM_COLUMNS = [t.jobs.c[name] for name in Claim.COLUMNS]
_LOST_COLUMNS = [t.jobs.c[name] for name in (*Claim.POLICY_COLUMNS, "cancel_requested")]


class JobManager(UserRequests):
    """Every state change of every job, each one committed transaction.

    Enqueue, claim, lease and record live here; cancel and retry in
    :mod:`~stockade.store.requests`; the fenced move they all use in
    :mod:`~stockade.store.base`.
    """

    # -- enqueue -----------------------------------------------------------

    def submit(self, new: Sequence[NewJob]) -> list[str]:
        """Record ``new`` jobs as ``queued`` (one transaction); their ids in order.

        Jobs of one call are a microsecond apart in age, so they run in the
        order given among jobs of equal priority.
        """
        ids = [job.id or new_job_id() for job in new]
        if not new:
            return ids
        with self.db.transaction() as conn:
            now = conn.execute(sa.select(epoch_now())).scalar_one()
            conn.execute(
                t.jobs.insert(),
                [
                    job_row(job, jid, now + i * 1e-6)
                    for i, (job, jid) in enumerate(zip(new, ids, strict=True))
                ],
            )
            conn.execute(
                t.events.insert(),
                [{"job_id": jid, "kind": "queued", "time": now} for jid in ids],
            )
            self.db.notify(conn, JOBS_CHANNEL)
        return ids

    # -- claim and lease ---------------------------------------------------

    def claim(self, worker_id: str, limit: int, lease: float) -> list[Claim]:
        """Claim up to ``limit`` runnable jobs (priority, then age) for ``worker_id``."""
        if limit < 1:
            return []
        check(Q, R)
        jobs, now = t.jobs, epoch_now()
        candidates = (
            sa.select(jobs.c.id)
            .where(jobs.c.state == Q.value, jobs.c.run_after <= now)
            .order_by(jobs.c.priority.desc(), jobs.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("candidates")
        )
        stmt = (
            sa.update(jobs)
            .where(jobs.c.id == candidates.c.id, jobs.c.state == Q.value)
            .values(
                state=R.value,
                attempts=jobs.c.attempts + 1,
                runs=jobs.c.runs + 1,
                worker_id=worker_id,
                lease_expires=now + lease,
                started_at=now,
                updated_at=now,
            )
            .returning(*_CLAIM_COLUMNS)
        )
        with self.db.transaction() as conn:
            claims = [Claim.from_row(row) for row in conn.execute(stmt).mappings()]
            if not claims:
                return []
            self._start_attempts(conn, worker_id, claims)
        claims.sort(key=lambda c: (-c.priority, c.job_id))
        return claims

    def _start_attempts(self, conn: Connection, worker_id: str, claims: list[Claim]) -> None:
        """Insert the attempt rows and ``started`` events; load saved state."""
        conn.execute(
            t.attempts.insert(),
            [
                {
                    "job_id": c.job_id,
                    "attempt": c.run,
                    "worker_id": worker_id,
                    "started_at": c.started_at,
                }
                for c in claims
            ],
        )
        conn.execute(
            t.events.insert(),
            [
                {
                    "job_id": c.job_id,
                    "kind": "started",
                    "attempt": c.run,
                    "data": {"worker": worker_id},
                    "time": c.started_at,
                }
                for c in claims
            ],
        )
        by_id = {c.job_id: c for c in claims}
        saved = sa.select(t.saved_state.c.job_id, t.saved_state.c.data).where(
            t.saved_state.c.job_id.in_(list(by_id))
        )
        for job_id, data in conn.execute(saved):
            by_id[job_id].state = dict(data or {})

    def renew(self, worker_id: str, lease: float) -> dict[str, tuple[int, bool]]:
        """Extend the leases ``worker_id`` holds; ``{job: (run, cancel_requested)}``.

        A job missing from the answer is no longer this worker's (its lease
        expired and another worker recovered it): stop running it.
        """
        jobs = t.jobs
        stmt = (
            sa.update(jobs)
            .where(jobs.c.worker_id == worker_id, jobs.c.state == R.value)
            .values(lease_expires=epoch_now() + lease)
            .returning(jobs.c.id, jobs.c.runs, jobs.c.cancel_requested)
        )
        with self.db.transaction() as conn:
            return {jid: (run, bool(cancel)) for jid, run, cancel in conn.execute(stmt)}

    def cancel_requests(self, worker_id: str) -> list[tuple[str, int]]:
        """``(job, run)`` of this worker's running jobs that were asked to stop."""
        jobs = t.jobs
        query = sa.select(jobs.c.id, jobs.c.runs).where(
            jobs.c.worker_id == worker_id, jobs.c.state == R.value, jobs.c.cancel_requested
        )
        with self.db.read() as conn:
            return [(jid, run) for jid, run in conn.execute(query)]

    # -- record ------------------------------------------------------------

    def finish(self, claim: Claim, result: Result) -> JobState | None:
        """Record how ``claim``'s attempt ended and move the job on by policy.

        Returns the job's new state, or ``None`` when the attempt was no
        longer the job's current one (its lease was taken over): then
        nothing at all is recorded.
        """
        return self.finish_many([(claim, result)])[0]

    def finish_many(self, ends: Sequence[tuple[Claim, Result]]) -> list[JobState | None]:
        """:meth:`finish` for several attempts in one transaction (group commit).

        Each end is fenced on its own; a stale one writes nothing and gets ``None``.
        """
        with self.db.transaction() as conn:
            return [self._finish(conn, claim, result) for claim, result in ends]

    def _finish(self, conn: Connection, claim: Claim, result: Result) -> JobState | None:
        cancel = False
        if result.outcome is not Outcome.SUCCEEDED:
            cancel_flag = self._fenced_cancel_flag(conn, claim)
            if cancel_flag is None:
                return None
            cancel = cancel_flag
        step = next_step(
            result.outcome, attempts=claim.attempts, max_attempts=claim.max_attempts,
            on_timeout=claim.on_timeout, cancel_requested=cancel,
        )  # fmt: skip
        summary = result_summary(result)
        if not self._move(conn, claim, step, summary):
            return None
        self._end_attempt(conn, claim.job_id, claim.run, summary, result_json(result))
        if step.state is JobState.SUCCEEDED:
            conn.execute(
                t.outputs.insert().values(
                    job_id=claim.job_id, attempt=claim.run, data=result.outputs
                )
            )
        if result.state != claim.state:
            self._save_state(conn, claim.job_id, claim.run, result.state)
        self._event(conn, claim.job_id, claim.run, "finished",
                    {"outcome": result.outcome.value, "state": step.state.value})  # fmt: skip
        return step.state

    def release(
        self, claim: Claim, *, reason: str, error: str | None = None, transient: bool = False
    ) -> JobState | None:
        """Put a running job back in the queue without spending its attempt.

        For a worker that shuts down (``reason="worker_shutdown"``) and for
        infrastructure failures (``transient=True``: sandbox, store). Past
        :data:`~stockade.store.policy.MAX_TRANSIENT` infrastructure failures
        the attempt is spent as a retryable failure instead. ``None`` when
        the attempt was no longer current.
        """
        if transient and claim.transient >= MAX_TRANSIENT:
            spent = Result(claim.job_id, claim.task, claim.run, Outcome.RETRYABLE, reason=reason)
            spent.error, spent.state = error, claim.state
            return self.finish(claim, spent)
        with self.db.transaction() as conn:
            cancel = self._fenced_cancel_flag(conn, claim)
            if cancel is None:
                return None
            target = JobState.CANCELLED if cancel else Q
            delay = (
                backoff_delay(
                    claim.transient + 1, initial=0.5, multiplier=2.0, cap=30.0, rand=self.rand()
                )
                if transient
                else 0.0
            )
            outcome = Outcome.RETRYABLE if transient else Outcome.CANCELLED
            summary = {
                "outcome": outcome.value,
                "reason": reason,
                "error": error,
                "exit_code": None,
                "signal": None,
            }
            extra: dict[str, Any] = {"attempts": t.jobs.c.attempts - 1}
            if transient:
                extra["transient"] = t.jobs.c.transient + 1
            if not self._move(conn, claim, Step(target), summary, delay=delay, extra=extra):
                return None
            self._end_attempt(conn, claim.job_id, claim.run, summary, None)
            self._event(
                conn, claim.job_id, claim.run, "released", {"reason": reason, "state": target.value}
            )
            if target is Q:
                self.db.notify(conn, JOBS_CHANNEL)
            return target

    def recover_expired(self, limit: int = 100) -> list[tuple[str, JobState]]:
        """Mark attempts whose lease expired ``lost``; retry or fail their jobs.

        Safe to run from every worker at once: candidates are locked with
        ``SKIP LOCKED``, and each move is fenced like any other.
        """
        jobs = t.jobs
        return self._recover(jobs.c.lease_expires < epoch_now(), limit, "lease_expired")

    def recover_worker(self, worker_id: str) -> list[tuple[str, JobState]]:
        """Treat every job ``worker_id`` holds as lost (that worker restarted)."""
        return self._recover(t.jobs.c.worker_id == worker_id, 10_000, "worker_restarted")

    def _recover(self, where: Any, limit: int, reason: str) -> list[tuple[str, JobState]]:
        jobs = t.jobs
        query = (
            sa.select(*_LOST_COLUMNS)
            .where(jobs.c.state == R.value, where)
            .order_by(jobs.c.lease_expires)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        moved: list[tuple[str, JobState]] = []
        with self.db.transaction() as conn:
            for row in conn.execute(query).mappings().all():
                claim = lost_claim(row)
                step = next_step(
                    Outcome.LOST,
                    attempts=claim.attempts,
                    max_attempts=claim.max_attempts,
                    on_timeout=claim.on_timeout,
                    cancel_requested=bool(row["cancel_requested"]),
                )
                summary = {
                    "outcome": Outcome.LOST.value,
                    "reason": reason,
                    "error": None,
                    "exit_code": None,
                    "signal": None,
                }
                if self._move(conn, claim, step, summary):
                    self._end_attempt(conn, claim.job_id, claim.run, summary, None)
                    self._event(
                        conn,
                        claim.job_id,
                        claim.run,
                        "lost",
                        {"reason": reason, "state": step.state.value},
                    )
                    moved.append((claim.job_id, step.state))
            if any(state is Q for _, state in moved):
                self.db.notify(conn, JOBS_CHANNEL)
        return moved
