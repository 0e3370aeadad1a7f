"""The fenced moves every job transition is built from (see :mod:`stockade.store.jobs`).

:class:`ManagerBase` holds the one UPDATE that moves a running job on
(:meth:`~ManagerBase._move`, fenced by state and attempt number) and the
writes that go with it. Only the job manager's modules subclass it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stockade.runner.policy import backoff_delay
from stockade.store import schema as t
from stockade.store.database import Database
from stockade.store.policy import Step
from stockade.store.records import Claim
from stockade.store.schema import epoch_now
from stockade.store.states import JobState, check
from stockade.store.usage import usage_columns

__all__ = [
    "CANCEL_CHANNEL", "JOBS_CHANNEL", "LOGS_CHANNEL", "ManagerBase", "logs_payload", "notify_logs",
]  # fmt: skip

#: NOTIFY channel that wakes idle workers when runnable work appears.
JOBS_CHANNEL = "stockade_jobs"
#: NOTIFY channel that tells workers a running job was asked to stop.
CANCEL_CHANNEL = "stockade_cancel"
#: NOTIFY channel that wakes log followers (the HTTP service's SSE streams): a
#: job's log grew or the job ended. Payload: the job ids, comma-separated;
#: empty means "any job" (too many ids for one notification).
LOGS_CHANNEL = "stockade_logs"
#: PostgreSQL refuses notification payloads of 8000 bytes or more.
_PAYLOAD_MAX = 7000


def notify_logs(db: Database, conn: Connection, job_ids: Iterable[str]) -> None:
    """Wake followers of ``job_ids``' logs when ``conn``'s transaction commits
    (PostgreSQL only; on SQLite they poll)."""
    db.notify(conn, LOGS_CHANNEL, logs_payload(job_ids))


def logs_payload(job_ids: Iterable[str]) -> str:
    """The :data:`LOGS_CHANNEL` payload naming ``job_ids`` (empty: too many to name)."""
    payload = ",".join(sorted(set(job_ids)))
    return payload if len(payload) <= _PAYLOAD_MAX else ""


Q, R = JobState.QUEUED, JobState.RUNNING


class ManagerBase:
    """Shared state and fenced writes of the job manager."""

    def __init__(self, db: Database, *, rand: Callable[[], float] = random.random) -> None:
        self.db = db
        self.rand = rand
        #: The age the next job submitted through this store gets at least
        #: (see :meth:`~stockade.store.JobManager.submit`).
        self._next_created = 0.0

    def _fenced_cancel_flag(self, conn: Connection, claim: Claim) -> bool | None:
        """Lock the job if ``claim`` is still its current run; its cancel flag, or ``None``."""
        jobs = t.jobs
        query = (
            sa.select(jobs.c.cancel_requested)
            .where(jobs.c.id == claim.job_id, jobs.c.runs == claim.run, jobs.c.state == R.value)
            .with_for_update()
        )
        flag = conn.execute(query).scalar_one_or_none()
        return None if flag is None else bool(flag)

    def _move(
        self,
        conn: Connection,
        claim: Claim,
        step: Step,
        summary: dict[str, Any],
        *,
        delay: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        """The fenced ``running → step.state`` UPDATE; whether it matched."""
        check(R, step.state)
        jobs, now = t.jobs, epoch_now()
        values: dict[str, Any] = {
            "state": step.state.value,
            "updated_at": now,
            "worker_id": None,
            "lease_expires": None,
            **summary,
            **(extra or {}),
        }
        if step.state is Q:
            if delay is None:
                delay = backoff_delay(
                    step.retry,
                    initial=claim.backoff_initial,
                    multiplier=claim.backoff_multiplier,
                    cap=claim.backoff_max,
                    rand=self.rand(),
                )
            values["run_after"] = now + delay
        else:
            values["finished_at"] = now
        stmt = (
            sa.update(jobs)
            .where(jobs.c.id == claim.job_id, jobs.c.runs == claim.run, jobs.c.state == R.value)
            .values(values)
        )
        return conn.execute(stmt).rowcount == 1

    def _end_attempt(
        self, conn: Connection, job_id: str, run: int, summary: dict[str, Any], result: Any
    ) -> None:
        duration = result.get("duration") if isinstance(result, dict) else None
        cpu, memory = usage_columns(result)
        conn.execute(
            sa.update(t.attempts)
            .where(t.attempts.c.job_id == job_id, t.attempts.c.attempt == run)
            .values(
                finished_at=epoch_now(),
                duration=duration,
                result=result,
                cpu_seconds=cpu,
                memory_bytes=memory,
                **summary,
            )
        )

    def _save_state(self, conn: Connection, job_id: str, run: int, data: dict[str, Any]) -> None:
        table = t.saved_state
        updated = conn.execute(
            sa.update(table).where(table.c.job_id == job_id).values(attempt=run, data=data)
        )
        if updated.rowcount == 0:
            conn.execute(table.insert().values(job_id=job_id, attempt=run, data=data))

    def _event(
        self, conn: Connection, job_id: str, run: int | None, kind: str, data: dict[str, Any]
    ) -> None:
        conn.execute(
            t.events.insert().values(
                job_id=job_id, kind=kind, attempt=run, data=data, time=epoch_now()
            )
        )
