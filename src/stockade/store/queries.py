"""The read side: jobs, attempts, outputs, logs, events and workers as records.

Reads change nothing, so they live apart from the job manager; each is one
read transaction (on SQLite it takes no write lock).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stockade.errors import AmbiguousId, JobNotFound, StoreError
from stockade.store import schema as t
from stockade.store.database import Database
from stockade.store.records import (
    LIVE_WITHIN,
    AttemptRecord,
    JobRecord,
    LogChunk,
    WorkerRecord,
    mark_waiting,
    worker_offer,
)
from stockade.store.routesql import ROUTING_ARGS, claim_args, queue_shape, routing_conditions
from stockade.store.routing import Offer, backend_of, waiting_for
from stockade.store.schema import epoch_now
from stockade.store.states import JobState

__all__ = [
    "CANDIDATES",
    "MIN_PREFIX",
    "Queries",
    "attempts_of",
    "chunks_of",
    "explain_waits",
    "job_by_id",
    "jobs_listing",
    "jobs_where",
    "live_offers",
    "newest_first",
    "now_query",
    "outputs_of",
    "resolve_id",
]

#: Shortest id prefix accepted for a job or run (shorter ones match too much).
MIN_PREFIX = 4
#: Ids an ambiguous prefix's error lists.
CANDIDATES = 5


def jobs_where(
    states: Iterable[str] = (), task: str | None = None, run_id: str | None = None
) -> sa.Select[Any]:
    """``SELECT`` of jobs in any of ``states`` (all if none), of ``task`` (any if
    None) and of pipeline run ``run_id`` (any if None)."""
    jobs = t.jobs
    query = sa.select(jobs)
    wanted = list(states)
    if wanted:
        query = query.where(jobs.c.state.in_(wanted))
    if task:
        query = query.where(jobs.c.task == task)
    if run_id:
        query = query.where(jobs.c.run_id == run_id)
    return query


def jobs_listing(
    states: Iterable[str],
    task: str | None,
    run_id: str | None,
    limit: int | None,
    oldest_first: bool = False,
) -> sa.Select[Any]:
    """:meth:`Queries.jobs`: the filtered jobs, newest first unless asked otherwise."""
    jobs = t.jobs
    order = jobs.c.created_at if oldest_first else jobs.c.created_at.desc()
    return jobs_where(states, task, run_id).order_by(order, jobs.c.id).limit(limit)


def job_by_id(job_id: str) -> sa.Select[Any]:
    return sa.select(t.jobs).where(t.jobs.c.id == job_id)


def attempts_of(job_id: str) -> sa.Select[Any]:
    """Every attempt row of a job, first to last."""
    table = t.attempts
    return sa.select(table).where(table.c.job_id == job_id).order_by(table.c.attempt)


def outputs_of(job_id: str) -> sa.Select[Any]:
    return sa.select(t.outputs.c.data).where(t.outputs.c.job_id == job_id)


def chunks_of(job_id: str, after: int, attempt: int | None, limit: int) -> sa.Select[Any]:
    """:meth:`Queries.logs`: a job's log chunks with ``id > after``, in order."""
    table = t.log_chunks
    query = sa.select(table).where(table.c.job_id == job_id, table.c.id > after)
    if attempt is not None:
        query = query.where(table.c.attempt == attempt)
    return query.order_by(table.c.id).limit(limit)


def live_offers() -> sa.Select[Any]:
    """What every live worker serves (see :data:`LIVE_WITHIN`): its sandboxes,
    queues and labels."""
    workers = t.workers
    return sa.select(workers.c.sandboxes, workers.c.queues, workers.c.labels).where(
        workers.c.stopped_at.is_(None), workers.c.last_seen >= epoch_now() - LIVE_WITHIN
    )


def now_query() -> sa.Select[Any]:
    return sa.select(epoch_now())


def _live_offers(conn: Connection) -> list[Offer]:
    """What live workers serve, one offer each."""
    return [worker_offer(*row) for row in conn.execute(live_offers()).all()]


def explain_waits(conn: Connection, records: list[JobRecord]) -> None:
    """Set ``waiting`` on queued jobs that no live worker can claim."""
    mark_waiting(records, lambda: _live_offers(conn))


def resolve_id(
    conn: Connection, table: sa.Table, ref: str, missing: Callable[[str], StoreError], what: str
) -> str:
    """The ``id`` in ``table`` that ``ref`` names: a whole id or a unique prefix
    of one (at least :data:`MIN_PREFIX` characters). ``missing(ref)`` is
    raised when none matches, :class:`AmbiguousId` (with some of the ids it
    matches, newest first) when several do or the prefix is too short."""
    if conn.execute(sa.select(table.c.id).where(table.c.id == ref)).first():
        return ref
    if not ref.isalnum():
        raise missing(ref)
    query = (
        sa.select(table.c.id)
        .where(table.c.id.startswith(ref, autoescape=True))
        .order_by(table.c.id.desc())
        .limit(CANDIDATES + 1)
    )
    found = [str(x) for x in conn.execute(query).scalars()]
    if not found:
        raise missing(ref)
    if len(found) > 1 or len(ref) < MIN_PREFIX:
        raise AmbiguousId(what, ref, found[:CANDIDATES], len(found) > CANDIDATES)
    return found[0]


def newest_first(query: sa.Select[Any], table: sa.Table, after: str | None) -> sa.Select[Any]:
    """``query`` over ``table`` (with ``id`` and ``created_at``) newest first,
    from just after the row ``after`` (a page cursor) when given."""
    if after:
        mark = sa.select(table.c.created_at).where(table.c.id == after).scalar_subquery()
        query = query.where(
            sa.or_(
                table.c.created_at < mark,
                sa.and_(table.c.created_at == mark, table.c.id < after),
            )
        )
    return query.order_by(table.c.created_at.desc(), table.c.id.desc())


class Queries:
    """Read-only views of the store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def resolve(self, ref: str) -> str:
        """The id of the job ``ref`` names: a whole id or a unique prefix of one."""
        with self.db.read() as conn:
            return resolve_id(conn, t.jobs, ref, JobNotFound, "job")

    def job(self, ref: str) -> JobRecord:
        """One job by id or unique prefix; :class:`JobNotFound` if there is none."""
        job_id = self.resolve(ref)
        with self.db.read() as conn:
            row = conn.execute(job_by_id(job_id)).mappings().first()
            if row is None:
                raise JobNotFound(ref)
            record = JobRecord.from_row(row)
            explain_waits(conn, [record])
        return record

    def jobs(
        self,
        *,
        states: Iterable[str] = (),
        task: str | None = None,
        limit: int | None = 100,
        oldest_first: bool = False,
        run_id: str | None = None,
    ) -> list[JobRecord]:
        """Jobs filtered by state(s), task and run, newest first unless asked otherwise."""
        query = jobs_listing(states, task, run_id, limit, oldest_first)
        with self.db.read() as conn:
            records = [JobRecord.from_row(row) for row in conn.execute(query).mappings()]
            explain_waits(conn, records)
        return records

    def unservable(self) -> dict[str, tuple[int, str]]:
        """Queued jobs no live worker can claim, by what they lack:
        ``{key: (jobs, reason)}``, the key a sandbox backend, ``queue Q`` or
        ``label K=V`` (``{}`` when every queued job has a worker)."""
        jobs = t.jobs
        query = (
            sa.select(jobs.c.queue, jobs.c.labels, jobs.c.sandbox_need, sa.func.count())
            .where(jobs.c.state == JobState.QUEUED.value)
            .group_by(jobs.c.queue, jobs.c.labels, jobs.c.sandbox_need)
        )
        found: dict[str, tuple[int, str]] = {}
        with self.db.read() as conn:
            groups = conn.execute(query).all()
            offers = _live_offers(conn) if groups else []
        for queue, labels, bit, n in groups:
            sandbox = (backend_of(bit) or f"#{bit}") if bit else None
            waiting = waiting_for(offers, queue, labels, sandbox)
            if waiting is not None:
                key, reason = waiting
                found[key] = (found.get(key, (0, reason))[0] + n, reason)
        return found

    def claimable(self, offer: Offer) -> int:
        """Jobs queued or running that a worker with ``offer`` could claim (now
        or once they are queued again): whether a burst worker is done."""
        jobs, shape = t.jobs, queue_shape(offer)
        query = (
            sa.select(sa.func.count())
            .select_from(jobs)
            .where(
                jobs.c.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
                *routing_conditions(self.db.dialect, shape),
            )
        )
        params = dict(zip(ROUTING_ARGS[shape], claim_args(offer), strict=True))
        with self.db.read() as conn:
            return int(conn.execute(query, params).scalar_one())

    def count_by_state(self, task: str | None = None) -> dict[str, int]:
        """``{state: number of jobs}``."""
        jobs = t.jobs
        query = sa.select(jobs.c.state, sa.func.count()).group_by(jobs.c.state)
        if task:
            query = query.where(jobs.c.task == task)
        with self.db.read() as conn:
            return {state: count for state, count in conn.execute(query)}

    def attempts(self, job_id: str) -> list[AttemptRecord]:
        """Every run of a job, first to last."""
        with self.db.read() as conn:
            rows = conn.execute(attempts_of(job_id)).mappings()
            return [AttemptRecord.from_row(row) for row in rows]

    def notifications(self, job_id: str) -> list[dict[str, Any]]:
        """The job's notifications and their tries (:mod:`~stockade.store.outbox`)."""
        from stockade.store.outbox import Outbox

        return Outbox(self.db).of_job(job_id)

    def keyed(self, unique_key: str) -> JobRecord | None:
        """The newest job submitted with ``unique_key``, whatever its state
        (a resumed fleet run finds the jobs its first process queued)."""
        jobs = t.jobs
        query = (
            sa.select(jobs).where(jobs.c.unique_key == unique_key)
            .order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(1)
        )  # fmt: skip
        with self.db.read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else JobRecord.from_row(row)

    def outputs(self, job_id: str) -> dict[str, Any] | None:
        """The outputs of the job's succeeded attempt, if it has one."""
        with self.db.read() as conn:
            data = conn.execute(outputs_of(job_id)).scalar_one_or_none()
        return dict(data) if data is not None else None

    def saved_state(self, job_id: str) -> dict[str, Any]:
        """The state saved for the job's next attempt (``{}`` if none)."""
        query = sa.select(t.saved_state.c.data).where(t.saved_state.c.job_id == job_id)
        with self.db.read() as conn:
            data = conn.execute(query).scalar_one_or_none()
        return dict(data or {})

    def logs(
        self, job_id: str, *, after: int = 0, attempt: int | None = None, limit: int = 1000
    ) -> list[LogChunk]:
        """Log chunks with ``id > after``, in order (all attempts unless one is given)."""
        query = chunks_of(job_id, after, attempt, limit)
        with self.db.read() as conn:
            return [LogChunk(**row) for row in conn.execute(query).mappings()]

    def events(self, job_id: str, *, after: int = 0) -> list[dict[str, Any]]:
        """Lifecycle events of a job, in order."""
        table = t.events
        query = (
            sa.select(table)
            .where(table.c.job_id == job_id, table.c.id > after)
            .order_by(table.c.id)
        )
        with self.db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def workers(self, *, alive_within: float | None = None) -> list[WorkerRecord]:
        """Registered workers (only those seen within ``alive_within`` s, if given)."""
        table = t.workers
        query = sa.select(table).order_by(table.c.started_at)
        if alive_within is not None:
            query = query.where(
                table.c.stopped_at.is_(None), table.c.last_seen >= epoch_now() - alive_within
            )
        with self.db.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [WorkerRecord(**{**row, "counters": dict(row["counters"] or {})}) for row in rows]

    def running_by_worker(self) -> dict[str, list[str]]:
        """The ids of running jobs, by the worker that holds them (oldest first)."""
        jobs = t.jobs
        query = (
            sa.select(jobs.c.worker_id, jobs.c.id)
            .where(jobs.c.state == JobState.RUNNING.value, jobs.c.worker_id.is_not(None))
            .order_by(jobs.c.started_at)
        )
        found: dict[str, list[str]] = {}
        with self.db.read() as conn:
            for worker, job in conn.execute(query):
                found.setdefault(worker, []).append(job)
        return found

    def now(self) -> float:
        """The database's clock."""
        with self.db.read() as conn:
            return float(conn.execute(now_query()).scalar_one())
