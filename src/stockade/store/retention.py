"""Retention: deleting finished jobs and runs, a small batch per transaction.

:meth:`Retention.prune` deletes at most ``limit`` jobs in one transaction:
standalone jobs whose final state is older than its age, with their
attempts, outputs, saved state, log chunks and events; and pipeline runs that
ended longer ago than their state's age, whole (the run, its test results
and every job of it: a run never loses some of its jobs). Candidates are
locked with ``SKIP LOCKED``, so any number of workers and servers prune at
once without waiting on each other. Callers loop (the CLI) or take one batch
per housekeeping tick (workers, servers): never one huge transaction.

A job that a live job depends on is kept (:func:`_needed`: a queued or
running job submitted ``--after`` it), so a dependent never loses the job it
waits on.

The policy itself (``retention:`` in the config) is stored as a setting, so a
worker started without the config applies the one the server or another
worker stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from stockade.store import schema as t
from stockade.store.database import Database
from stockade.store.schema import epoch_now
from stockade.store.states import RUN_TERMINAL, TERMINAL

__all__ = ["RETENTION_KEY", "Pruned", "Retention"]

RETENTION_KEY = "retention"

#: The tables holding rows of a job, deleted with it.
_CHILDREN = (
    t.attempts, t.outputs, t.saved_state, t.log_chunks, t.events, t.notifications, t.job_deps,
)  # fmt: skip


def _needed() -> sa.ColumnElement[bool]:
    """A live job (queued or running) waits on this one (``--after``).

    ``followers`` is set on a job once anything waits on it, so the common
    job, which nobody waits on, costs no lookup."""
    jobs, deps = t.jobs, t.job_deps
    waiting = sa.alias(t.jobs, "waiting")
    live = (
        sa.select(sa.literal(1))
        .select_from(deps.join(waiting, waiting.c.id == deps.c.job_id))
        .where(deps.c.after_id == jobs.c.id, waiting.c.state.in_(("queued", "running")))
    )
    return sa.and_(jobs.c.followers.is_(True), live.exists())


@dataclass
class Pruned:
    """What one batch deleted (or, dry, would delete)."""

    jobs: list[tuple[str, int]] = field(default_factory=list)  # (id, attempts run)
    runs: list[str] = field(default_factory=list)

    def __iadd__(self, other: Pruned) -> Pruned:
        self.jobs += other.jobs
        self.runs += other.runs
        return self


def _old(column: sa.ColumnElement[Any], ages: Mapping[str, float], state: Any, now: float) -> Any:
    """``state`` is one of ``ages``' and ``column`` is older than its age at ``now``."""
    return sa.or_(*[sa.and_(state == name, column < now - age) for name, age in ages.items()])


def _old_runs(ages: Mapping[str, float], now: float) -> list[Any]:
    """Runs that ended longer ago than their state's age and have no job
    still queued or running (a rerun's step): their rows can all go."""
    runs, jobs = t.runs, t.jobs
    live = (
        sa.select(jobs.c.id)
        .where(jobs.c.run_id == runs.c.id, jobs.c.state.not_in(list(_STATES)))
        .exists()
    )
    return [
        runs.c.state.in_([s.value for s in RUN_TERMINAL]),
        runs.c.finished_at.is_not(None),
        _old(runs.c.finished_at, ages, runs.c.state, now),
        ~live,
    ]


class Retention:
    """Retention over one store's tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def policy(self) -> dict[str, float]:
        """The stored policy: final state to age in seconds ({} keeps all)."""
        s = t.settings
        with self.db.read() as conn:
            value = conn.execute(
                sa.select(s.c.value).where(s.c.key == RETENTION_KEY)
            ).scalar_one_or_none()
        if not isinstance(value, dict):
            return {}
        return {k: float(v) for k, v in value.items() if k in _STATES}

    def set_policy(self, ages: Mapping[str, float]) -> None:
        """Store the policy every process of this store applies."""
        s = t.settings
        value = {k: float(v) for k, v in ages.items()}
        with self.db.transaction() as conn:
            now = conn.execute(sa.select(epoch_now())).scalar_one()
            updated = conn.execute(
                sa.update(s).where(s.c.key == RETENTION_KEY).values(value=value, updated_at=now)
            )
            if updated.rowcount == 0:
                conn.execute(sa.insert(s).values(key=RETENTION_KEY, value=value, updated_at=now))

    def prune(
        self,
        ages: Mapping[str, float],
        *,
        limit: int = 200,
        now: float | None = None,
        dry_run: bool = False,
    ) -> Pruned:
        """Delete one batch: up to ``limit`` standalone jobs, then whole runs
        while the batch has room (a run is never split), older than ``ages``
        (final state to seconds) at ``now`` (the database's clock unless given)."""
        ages = {k: v for k, v in ages.items() if k in _STATES}
        if not ages or limit < 1:
            return Pruned()
        jobs, runs = t.jobs, t.runs
        pruned = Pruned()
        with self.db.transaction() as conn:
            clock = now if now is not None else conn.execute(sa.select(epoch_now())).scalar_one()
            pruned.jobs = [
                (jid, n)
                for jid, n in conn.execute(
                    sa.select(jobs.c.id, jobs.c.runs)
                    .where(
                        jobs.c.finished_at.is_not(None),
                        jobs.c.run_id.is_(None),
                        _old(jobs.c.finished_at, ages, jobs.c.state, clock),
                        ~_needed(),
                    )
                    .order_by(jobs.c.finished_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ]
            room = limit - len(pruned.jobs)
            if room > 0:
                old_runs = conn.execute(
                    sa.select(runs.c.id)
                    .where(
                        *_old_runs(ages, clock),
                    )
                    .order_by(runs.c.finished_at)
                    .limit(max(1, room // 10))
                    .with_for_update(skip_locked=True)
                ).scalars()
                for run_id in old_runs:
                    if room <= 0:
                        break
                    members = conn.execute(
                        sa.select(jobs.c.id, jobs.c.runs).where(jobs.c.run_id == run_id)
                    ).all()
                    pruned.runs.append(run_id)
                    pruned.jobs += [(jid, n) for jid, n in members]
                    room -= max(1, len(members))
            if not dry_run:
                self._delete(conn, [jid for jid, _ in pruned.jobs], pruned.runs)
        return pruned

    def count(self, ages: Mapping[str, float], now: float | None = None) -> tuple[int, int]:
        """``(standalone jobs, runs)`` that :meth:`prune` would delete now
        (a dry run; the jobs of those runs are not counted)."""
        ages = {k: v for k, v in ages.items() if k in _STATES}
        if not ages:
            return 0, 0
        jobs, runs = t.jobs, t.runs
        with self.db.read() as conn:
            clock = now if now is not None else conn.execute(sa.select(epoch_now())).scalar_one()
            standalone = conn.execute(
                sa.select(sa.func.count())
                .select_from(jobs)
                .where(
                    jobs.c.finished_at.is_not(None),
                    jobs.c.run_id.is_(None),
                    _old(jobs.c.finished_at, ages, jobs.c.state, clock),
                    ~_needed(),
                )
            ).scalar_one()
            old_runs = conn.execute(
                sa.select(sa.func.count())
                .select_from(runs)
                .where(
                    *_old_runs(ages, clock),
                )
            ).scalar_one()
        return int(standalone), int(old_runs)

    @staticmethod
    def _delete(conn: sa.Connection, ids: list[str], run_ids: list[str]) -> None:
        for start in range(0, len(ids), 500):  # far below SQLite's bound-variable limit
            chunk = ids[start : start + 500]
            for table in _CHILDREN:
                conn.execute(sa.delete(table).where(table.c.job_id.in_(chunk)))
            conn.execute(sa.delete(t.jobs).where(t.jobs.c.id.in_(chunk)))
        if run_ids:
            conn.execute(sa.delete(t.run_tests).where(t.run_tests.c.run_id.in_(run_ids)))
            conn.execute(sa.delete(t.runs).where(t.runs.c.id.in_(run_ids)))


_STATES = frozenset(s.value for s in TERMINAL)
