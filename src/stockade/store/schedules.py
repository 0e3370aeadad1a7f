"""Schedules in the store: defined from the config, fired exactly once per tick.

:meth:`ScheduleStore.fire_due` is safe to call from every worker and server
at once. In one transaction it reads the due schedules (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; SQLite serializes writers), asks each one's
:class:`~stockade.schedule.ticks.Ticker` which ticks to submit, moves
``next_at`` past them with an UPDATE conditioned on the ``next_at`` it read,
and enqueues their jobs, only if that UPDATE matched. A tick's job id is a
hash of the schedule's name and the tick's time, a second guard: the same
tick enqueued twice would break the primary key and roll the whole
transaction back. Either the tick's jobs and the moved ``next_at`` are
committed together, or neither is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from stockade.schedule.ticks import CatchUp, Ticker
from stockade.store import schema as t
from stockade.store.database import Database
from stockade.store.jobs import JobManager
from stockade.store.records import NewJob
from stockade.store.schema import epoch_now

__all__ = ["Fired", "ScheduleDef", "ScheduleRecord", "ScheduleStore", "tick_job_id"]


def tick_job_id(name: str, tick: float) -> str:
    """The id of the job a schedule's tick submits: 19 hex digits, like other ids."""
    return hashlib.sha256(f"schedule\0{name}\0{tick:.6f}".encode()).hexdigest()[:19]


@dataclass(frozen=True)
class ScheduleDef:
    """A schedule as the config defines it, with the job each tick submits."""

    name: str
    cron: str
    timezone: str
    catch_up: str
    job: NewJob

    def ticker(self) -> Ticker:
        return Ticker(self.cron, self.timezone, CatchUp(self.catch_up))

    def definition(self) -> str:
        """A hash of everything that defines it: a change starts it afresh."""
        text = json.dumps(
            [self.cron, self.timezone, self.catch_up, asdict(self.job)],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ScheduleRecord:
    """A stored schedule, for listings."""

    name: str
    task: str
    cron: str
    timezone: str
    catch_up: str
    next_at: float
    last_at: float | None
    last_job: str | None
    skipped: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Fired:
    """What one pass did for one schedule."""

    name: str
    job_ids: list[str]
    skipped: int
    #: Why this process could not fire it (it stays due for the others).
    error: str | None = None


class ScheduleStore:
    """The ``schedules`` table of one store."""

    def __init__(self, db: Database, jobs: JobManager) -> None:
        self.db = db
        self.jobs = jobs

    def define(self, defs: Sequence[ScheduleDef], now: float | None = None) -> None:
        """Make the stored schedules those of ``defs``: new ones start at their
        next tick after ``now``, changed ones start afresh from ``now`` (past
        ticks are never submitted for a definition they did not have), and
        those no longer defined are removed. Unchanged ones keep their place."""
        s = t.schedules
        with self.db.transaction() as conn:
            clock = _clock(conn, now)
            stored = {n: d for n, d in conn.execute(sa.select(s.c.name, s.c.definition))}
            for d in defs:
                definition = d.definition()
                if stored.pop(d.name, None) == definition:
                    continue
                values = {
                    "task": d.job.task, "cron": d.cron, "timezone": d.timezone,
                    "catch_up": d.catch_up, "job": _job_json(d.job), "definition": definition,
                    "next_at": d.ticker().next_after(clock), "updated_at": clock,
                }  # fmt: skip
                changed = conn.execute(sa.update(s).where(s.c.name == d.name).values(values))
                if changed.rowcount == 0:
                    conn.execute(sa.insert(s).values(name=d.name, **values))
            if stored:
                conn.execute(sa.delete(s).where(s.c.name.in_(list(stored))))

    def fire_due(self, now: float | None = None, limit: int = 20) -> list[Fired]:
        """Submit the due ticks of up to ``limit`` schedules (``now``: the
        database's clock unless given); what was submitted or skipped."""
        s = t.schedules
        fired: list[Fired] = []
        with self.db.read() as conn:  # most passes find nothing due: no write lock for them
            clock = _clock(conn, now)
            if (
                conn.execute(sa.select(s.c.name).where(s.c.next_at <= clock).limit(1)).first()
                is None
            ):
                return fired
        with self.db.transaction() as conn:
            clock = _clock(conn, now)
            rows = conn.execute(
                sa.select(s.c.name, s.c.cron, s.c.timezone, s.c.catch_up, s.c.job, s.c.next_at)
                .where(s.c.next_at <= clock)
                .order_by(s.c.next_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for name, cron, zone, catch_up, job, next_at in rows:
                try:
                    due = Ticker(cron, zone, CatchUp(catch_up)).due(next_at, clock)
                    template = NewJob(**job)
                except (ValueError, TypeError, LookupError) as exc:
                    # A row this process cannot read (a time zone unknown on
                    # this host, a row from another version): left to others.
                    fired.append(Fired(name, [], 0, error=f"{type(exc).__name__}: {exc}"))
                    continue
                ids = [tick_job_id(name, tick) for tick in due.ticks]
                moved = conn.execute(
                    sa.update(s)
                    .where(s.c.name == name, s.c.next_at == next_at)
                    .values(
                        next_at=due.next_at,
                        updated_at=clock,
                        skipped=s.c.skipped + due.skipped,
                        **({"last_at": due.ticks[-1], "last_job": ids[-1]} if ids else {}),
                    )
                )
                if moved.rowcount != 1:
                    continue  # another process fired it first
                if ids:
                    self.jobs.enqueue(conn, [(template, jid) for jid in ids])
                fired.append(Fired(name, ids, due.skipped))
        return fired

    def list(self) -> list[ScheduleRecord]:
        """Every stored schedule, by name."""
        s = t.schedules
        columns = (s.c.name, s.c.task, s.c.cron, s.c.timezone, s.c.catch_up, s.c.next_at,
                   s.c.last_at, s.c.last_job, s.c.skipped)  # fmt: skip
        with self.db.read() as conn:
            rows = conn.execute(sa.select(*columns).order_by(s.c.name)).all()
        return [ScheduleRecord(*row) for row in rows]


def _clock(conn: sa.Connection, now: float | None) -> float:
    if now is not None:
        return now
    value: float = conn.execute(sa.select(epoch_now())).scalar_one()
    return value


def _job_json(job: NewJob) -> dict[str, Any]:
    data = asdict(job)
    data["id"] = None
    return data
