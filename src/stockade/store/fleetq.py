"""Aggregates for the fleet's dashboards: what ``/metrics`` and the job list's chart read.

Each is one grouped query over the store, run at scrape (or page) time, so
every server sharing a database reports the same figures (see
:mod:`stockade.server.metrics`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from stockade.store import schema as t
from stockade.store.database import Database
from stockade.store.schema import epoch_now
from stockade.store.states import JobState

__all__ = [
    "FINAL",
    "attempt_reasons",
    "busy_by_worker",
    "ended_jobs",
    "notification_states",
    "outcomes_per_minute",
    "queue_by_task",
]

#: The states a job ends in.
FINAL = (JobState.SUCCEEDED.value, JobState.FAILED.value, JobState.CANCELLED.value)


def ended_jobs(db: Database) -> dict[tuple[str, str], int]:
    """``{(state, reason): jobs}`` of the jobs that ended (a retried job leaves it)."""
    jobs = t.jobs
    reason = sa.func.coalesce(jobs.c.reason, "")
    query = (
        sa.select(jobs.c.state, reason, sa.func.count())
        .where(jobs.c.state.in_(FINAL))
        .group_by(jobs.c.state, reason)
    )
    with db.read() as conn:
        return {(state, why): int(n) for state, why, n in conn.execute(query)}


def queue_by_task(db: Database) -> dict[str, tuple[int, float]]:
    """``{task: (runnable queued jobs, wait of its oldest in seconds)}``."""
    jobs, now = t.jobs, epoch_now()
    query = (
        sa.select(jobs.c.task, sa.func.count(), sa.func.min(jobs.c.run_after), now)
        .where(jobs.c.state == JobState.QUEUED.value, jobs.c.run_after <= now)
        .group_by(jobs.c.task)
    )
    with db.read() as conn:
        return {
            task: (int(n), max(0.0, float(clock) - float(oldest)))
            for task, n, oldest, clock in conn.execute(query)
        }


def attempt_reasons(db: Database) -> dict[tuple[str, str], int]:
    """``{(outcome, reason): finished attempts}`` (OOMs: reason ``oom``; lost
    attempts: outcome ``lost``)."""
    a = t.attempts
    reason = sa.func.coalesce(a.c.reason, "")
    query = (
        sa.select(a.c.outcome, reason, sa.func.count())
        .where(a.c.outcome.is_not(None))
        .group_by(a.c.outcome, reason)
    )
    with db.read() as conn:
        return {(outcome, why): int(n) for outcome, why, n in conn.execute(query)}


def busy_by_worker(db: Database) -> dict[str, int]:
    """``{worker: jobs it runs now}``."""
    jobs = t.jobs
    query = (
        sa.select(jobs.c.worker_id, sa.func.count())
        .where(jobs.c.state == JobState.RUNNING.value, jobs.c.worker_id.is_not(None))
        .group_by(jobs.c.worker_id)
    )
    with db.read() as conn:
        return {str(worker): int(n) for worker, n in conn.execute(query)}


def notification_states(db: Database) -> dict[str, int]:
    """``{state: notifications}`` of the outbox (pending, sending, delivered, failed)."""
    n = t.notifications
    query = sa.select(n.c.state, sa.func.count()).group_by(n.c.state)
    with db.read() as conn:
        return {state: int(count) for state, count in conn.execute(query)}


def outcomes_per_minute(db: Database, minutes: int = 60) -> dict[str, Any]:
    """Jobs that ended in the last ``minutes`` minutes, by final state and minute.

    ``{"start": epoch of the first minute, "minutes": N, "series": {state:
    [count per minute, oldest first]}}``; minutes are whole minutes of the
    database's clock, the last one the current (partial) minute.
    """
    jobs = t.jobs
    with db.read() as conn:
        now = float(conn.execute(sa.select(epoch_now())).scalar_one())
        start = (now // 60 - (minutes - 1)) * 60
        offset = (jobs.c.finished_at - start) / 60
        # Non-negative here, so truncation is the floor (PostgreSQL's cast rounds).
        bucket = (
            sa.func.floor(offset) if db.dialect == "postgresql" else sa.cast(offset, sa.Integer)
        )
        query = (
            sa.select(jobs.c.state, bucket, sa.func.count())
            .where(jobs.c.state.in_(FINAL), jobs.c.finished_at >= start)
            .group_by(jobs.c.state, bucket)
        )
        rows = conn.execute(query).all()
    series = {state: [0] * minutes for state in FINAL}
    for state, index, count in rows:
        i = int(index)
        if 0 <= i < minutes:
            series[state][i] += int(count)
    return {"start": start, "minutes": minutes, "series": series}
