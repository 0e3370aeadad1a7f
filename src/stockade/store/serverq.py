"""What the HTTP service asks of the store beyond the job manager and queries.

* Keyed submission: a job whose id is derived from a client's key (an
  ``Idempotency-Key``, a webhook's delivery id), so a repeated request finds
  the job the first one made instead of making a second one. The job's
  primary key is the lock: two racing requests cannot both insert it.
* Webhook deliveries: every delivery counted by hook and outcome
  (``webhook_tallies``); each verified one, and the newest
  :data:`UNVERIFIED_SAMPLE` of those that failed before their signature was
  verified, as a row of ``webhook_deliveries``. Anyone can post to a hook,
  so what an unverified post writes is bounded: one count and a capped sample.
* Aggregates for health and metrics, read at scrape time from the database
  so they are right however many server processes share it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from stockade.errors import StoreError
from stockade.store import schema as t
from stockade.store.database import Database
from stockade.store.ids import new_job_id
from stockade.store.queries import explain_waits, jobs_where, newest_first
from stockade.store.records import JobRecord, NewJob
from stockade.store.schema import epoch_now
from stockade.store.states import JobState
from stockade.store.store import Store

__all__ = [
    "DURATION_BUCKETS", "UNVERIFIED_SAMPLE", "USAGE_BUCKETS", "QueueStats", "ServerQueries",
    "deliveries", "keyed_job_id",
]  # fmt: skip

deliveries = t.webhook_deliveries
tallies = t.webhook_tallies

#: Rows kept per hook of deliveries refused before their signature was verified.
UNVERIFIED_SAMPLE = 100

#: Upper bounds (seconds) of the attempt-duration histogram.
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)

_MIB = 1 << 20
#: Upper bounds of the per-task usage histograms: CPU seconds, memory bytes.
USAGE_BUCKETS: dict[str, tuple[float, ...]] = {
    "cpu_seconds": (0.01, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0),
    "memory_bytes": tuple(float(m * _MIB) for m in (16, 64, 256, 1024, 4096, 16384)),
}


#: Every column of ``jobs`` but the frozen spec, which a submitter never sees
#: (parsing it back for every job of a batch was a third of the batch's time).
_NO_SPEC = [column for column in t.jobs.c if column.name != "spec"]


def _queued(row: dict[str, Any]) -> JobRecord:
    """The record of a job just inserted from ``row`` (``job_row``), without
    reading it back: what the row does not set is unset in a new job."""
    values: dict[str, Any] = {name: row.get(name) for name in _RECORD_FIELDS}
    values["state"] = JobState.QUEUED
    return JobRecord(**values)


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(JobRecord))


def keyed_job_id(scope: str, key: str) -> str:
    """The job id a client key stands for: 19 hex digits, like generated ids."""
    return hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()[:19]


@dataclass
class QueueStats:
    """Runnable queued jobs and how long the oldest has waited (seconds)."""

    depth: int
    oldest_age: float


class ServerQueries:
    """Keyed submission, webhook deliveries and aggregates over one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db: Database = store.db

    def ensure_tables(self) -> None:
        """Nothing to do: the service's tables are in the schema (migration ``0002``),
        which opening the store already checked. Kept for callers of the old API."""

    # -- keyed submission ----------------------------------------------------

    def submit_keyed(self, job: NewJob, job_id: str) -> tuple[JobRecord, bool]:
        """Submit ``job`` under ``job_id`` unless a job has that id already;
        ``(the job, whether this call created it)``."""
        existing = self._find(job_id)
        if existing is not None:
            return existing, False
        job.id = job_id
        try:
            self.store.jobs.submit([job])
        except StoreError:
            existing = self._find(job_id)  # lost a race with the same key
            if existing is None:
                raise
            return existing, False
        return self.store.queries.job(job_id), True

    def submit_batch(
        self, items: Sequence[tuple[NewJob, str | None]]
    ) -> list[tuple[JobRecord, bool]]:
        """Submit many jobs in one write transaction (group commit); for each
        ``(job, keyed id or None)`` in order, ``(the job, whether this call created it)``.

        A keyed id that exists already, or that an earlier item of the same
        batch takes, is not inserted again: its item gets the job that has it.
        All or nothing: on any error nothing of the batch is stored, and the
        caller may submit the items one by one (:meth:`submit_keyed`) to learn
        which one failed. On SQLite the lookup and the inserts share the write
        lock, so no other writer can slip a job with the same id in between;
        on PostgreSQL a concurrent insert of one of the ids makes the batch
        fail with :class:`StoreError` (the primary key still holds).
        """
        ids = [job_id or new_job_id() for _, job_id in items]
        keyed = sorted({jid for (_, key), jid in zip(items, ids, strict=True) if key})
        jobs = t.jobs
        with self.db.transaction() as conn:
            taken = set(
                conn.execute(sa.select(jobs.c.id).where(jobs.c.id.in_(keyed))).scalars()
                if keyed
                else ()
            )
            old = sorted(taken)
            created: list[bool] = []
            fresh: list[tuple[NewJob, str]] = []
            for (job, _), jid in zip(items, ids, strict=True):
                created.append(jid not in taken)
                if jid not in taken:
                    taken.add(jid)
                    fresh.append((job, jid))
            same: dict[str, str] = {}  # a unique key's duplicate → the live job
            found = {row["id"]: _queued(row) for row in self.store.jobs.enqueue(conn, fresh, same)}
            if same or any(job.gated for job, _ in fresh):
                # A duplicate gets the live job; a held job may have been let
                # go in this transaction: both are read back.
                created = [made and jid not in same for made, jid in zip(created, ids, strict=True)]
                ids = [same.get(jid, jid) for jid in ids]
                gated = {jid for job, jid in fresh if job.gated}
                old = sorted({*old, *gated, *(jid for jid in ids if jid not in found)})
            if old:  # only jobs made before need reading back
                rows = conn.execute(sa.select(*_NO_SPEC).where(jobs.c.id.in_(old)))
                found.update((row["id"], JobRecord.from_row(row)) for row in rows.mappings())
                for (job, _), jid in zip(items, ids, strict=True):  # what views mask by
                    if jid in old and job.task == found[jid].task:
                        found[jid].spec = job.spec
        superseding = [(job, jid, found[jid].created_at) for job, jid in fresh
                       if job.cancel_in_progress and jid in found]  # fmt: skip
        if superseding:
            self.store.jobs.supersede(superseding)
        return [(found[jid], made) for jid, made in zip(ids, created, strict=True)]

    def _find(self, job_id: str) -> JobRecord | None:
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).mappings().first()
        return JobRecord.from_row(row) if row is not None else None

    def page(
        self, *, states: Iterable[str] = (), task: str | None = None, limit: int = 50,
        after: str | None = None, run_id: str | None = None, search: str | None = None,
    ) -> list[JobRecord]:  # fmt: skip
        """Jobs newest first, ``limit`` of them, those after job ``after`` (a
        cursor); of pipeline run ``run_id`` only, when given; matching
        ``search`` (:func:`stockade.store.search.matching`), when given."""
        where = jobs_where(states, task, run_id)
        with self.db.read() as conn:
            if search:
                from stockade.store.search import matching, window_start

                where = where.where(matching(search, window_start(conn)))
            query = newest_first(where, t.jobs, after).limit(limit)
            records = [JobRecord.from_row(row) for row in conn.execute(query).mappings()]
            explain_waits(conn, records)
        return records

    # -- webhook deliveries ----------------------------------------------------

    def record_delivery(
        self, hook: str, delivery_id: str | None, event: str | None, outcome: str,
        status: int, *, reason: str | None = None, job_id: str | None = None,
        verified: bool = True, keep: bool = True,
    ) -> None:  # fmt: skip
        """Count one delivery and record what became of it: a row if ``keep``;
        one of an unverified delivery (``verified=False``) joins the capped
        sample, whose oldest rows beyond :data:`UNVERIFIED_SAMPLE` go."""
        values: dict[str, Any] = {
            "hook": hook, "delivery_id": delivery_id, "event": event, "outcome": outcome,
            "status": status, "reason": reason, "job_id": job_id, "time": epoch_now(),
        }  # fmt: skip
        with self.db.transaction() as conn:
            conn.execute(self._tally(hook, outcome))
            if keep:
                conn.execute(deliveries.insert().values({**values, "verified": verified}))
            if keep and not verified:
                conn.execute(self._prune(hook))

    def _tally(self, hook: str, outcome: str) -> Any:
        """Add one to ``(hook, outcome)``'s count (an upsert on either store)."""
        from sqlalchemy.dialects import postgresql, sqlite

        dialect: Any = postgresql if self.db.dialect == "postgresql" else sqlite
        statement = dialect.insert(tallies).values(hook=hook, outcome=outcome, count=1)
        return statement.on_conflict_do_update(
            index_elements=[tallies.c.hook, tallies.c.outcome],
            set_={"count": tallies.c.count + 1},
        )

    @staticmethod
    def _prune(hook: str) -> Any:
        """Delete the hook's unverified rows older than the newest
        :data:`UNVERIFIED_SAMPLE`."""
        mine = sa.and_(deliveries.c.hook == hook, deliveries.c.verified == sa.false())
        oldest_kept = (
            sa.select(deliveries.c.id).where(mine).order_by(deliveries.c.id.desc())
            .offset(UNVERIFIED_SAMPLE - 1).limit(1).scalar_subquery()
        )  # fmt: skip
        return deliveries.delete().where(mine, deliveries.c.id < oldest_kept)

    def deliveries(self, hook: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Recorded deliveries, newest first."""
        query = sa.select(deliveries).order_by(deliveries.c.id.desc()).limit(limit)
        if hook:
            query = query.where(deliveries.c.hook == hook)
        with self.db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def delivery_counts(self) -> dict[tuple[str, str], int]:
        """``{(hook, outcome): deliveries}``, every delivery counted."""
        query = sa.select(tallies.c.hook, tallies.c.outcome, tallies.c.count)
        with self.db.read() as conn:
            return {(hook, outcome): int(n) for hook, outcome, n in conn.execute(query)}

    # -- aggregates ------------------------------------------------------------

    def jobs_by_state_task(self) -> dict[tuple[str, str], int]:
        """``{(state, task): jobs}``."""
        jobs = t.jobs
        query = sa.select(jobs.c.state, jobs.c.task, sa.func.count()).group_by(
            jobs.c.state, jobs.c.task
        )
        with self.db.read() as conn:
            return {(state, task): n for state, task, n in conn.execute(query)}

    def queue(self) -> QueueStats:
        """Depth and oldest age of the runnable queue (``run_after`` reached)."""
        jobs, now = t.jobs, epoch_now()
        query = sa.select(sa.func.count(), sa.func.min(jobs.c.run_after), now).where(
            jobs.c.state == JobState.QUEUED.value, jobs.c.run_after <= now
        )
        with self.db.read() as conn:
            depth, oldest, clock = conn.execute(query).one()
        age = max(0.0, float(clock) - float(oldest)) if oldest is not None else 0.0
        return QueueStats(int(depth), age)

    def attempts_by_outcome(self) -> dict[str, int]:
        """``{outcome: finished attempts}``."""
        a = t.attempts
        query = (
            sa.select(a.c.outcome, sa.func.count())
            .where(a.c.outcome.is_not(None))
            .group_by(a.c.outcome)
        )
        with self.db.read() as conn:
            return {outcome: n for outcome, n in conn.execute(query)}

    def duration_histogram(self) -> tuple[list[int], int, float]:
        """Cumulative counts of attempt durations per :data:`DURATION_BUCKETS`
        bound, then the total count and sum."""
        d = t.attempts.c.duration
        columns = [sa.func.sum(sa.case((d <= bound, 1), else_=0)) for bound in DURATION_BUCKETS]
        query = sa.select(*columns, sa.func.count(d), sa.func.sum(d)).where(d.is_not(None))
        with self.db.read() as conn:
            row = conn.execute(query).one()
        counts = [int(v or 0) for v in row[: len(DURATION_BUCKETS)]]
        return counts, int(row[-2] or 0), float(row[-1] or 0.0)

    def usage_histograms(self) -> dict[str, dict[str, tuple[list[int], int, float]]]:
        """Per task, what finished attempts used, as cumulative counts per
        :data:`USAGE_BUCKETS` bound, count and sum: the attempts' columns
        ``cpu_seconds`` (user + system) and ``memory_bytes`` (the memory peak
        where measured, else the largest resident set)."""
        cpu, memory = t.attempts.c.cpu_seconds, t.attempts.c.memory_bytes
        found: dict[str, dict[str, tuple[list[int], int, float]]] = {}
        with self.db.read() as conn:
            for name, value in (("cpu_seconds", cpu), ("memory_bytes", memory)):
                bounds = USAGE_BUCKETS[name]
                query = (
                    sa.select(
                        t.jobs.c.task,
                        *[sa.func.sum(sa.case((value <= b, 1), else_=0)) for b in bounds],
                        sa.func.count(value),
                        sa.func.sum(value),
                    )
                    .select_from(t.attempts.join(t.jobs, t.jobs.c.id == t.attempts.c.job_id))
                    .where(value.is_not(None))
                    .group_by(t.jobs.c.task)
                )
                for row in conn.execute(query).all():
                    counts = [int(v or 0) for v in row[1 : 1 + len(bounds)]]
                    found.setdefault(row[0], {})[name] = (
                        counts, int(row[-2] or 0), float(row[-1] or 0.0),
                    )  # fmt: skip
        return found

    def log_bytes(self) -> int:
        """Characters of log text stored, all jobs."""
        query = sa.select(sa.func.coalesce(sa.func.sum(sa.func.length(t.log_chunks.c.text)), 0))
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())
