"""Writes that are not job transitions: log chunks and the worker registry.

Kept apart from the job manager on purpose: they never change a job's
state, so they cannot break a transition, and the worker can batch them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from stockade import __version__
from stockade.errors import NameInUse
from stockade.store import liveness
from stockade.store import schema as t
from stockade.store.base import LOGS_CHANNEL, logs_payload
from stockade.store.database import Database
from stockade.store.direct import insert_batch
from stockade.store.schema import epoch_now

__all__ = ["Journal"]

_CHUNK_COLUMNS = ("job_id", "attempt", "stream", "text", "time")
_INSERT_CHUNKS = insert_batch(t.log_chunks, *_CHUNK_COLUMNS)


def _insert(dialect: str, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing``."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class Journal:
    """Log chunks in, worker rows up to date."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def append_logs(self, chunks: Sequence[Mapping[str, Any]]) -> None:
        """Insert chunks (``job_id``, ``attempt``, ``stream``, ``text``, ``time``) in
        order, and wake whoever follows those jobs' logs.

        On the driver's cursor (:mod:`~stockade.store.direct`): a worker writes
        this for every job that prints, on the thread that shares the GIL with
        the jobs' event loop."""
        if chunks:
            with self.db.direct() as tx:
                tx.many(
                    _INSERT_CHUNKS, [tuple(chunk[c] for c in _CHUNK_COLUMNS) for chunk in chunks]
                )
                tx.notify(LOGS_CHANNEL, logs_payload(chunk["job_id"] for chunk in chunks))

    def drop_logs(self, job_id: str, attempt: int) -> None:
        """Delete the log chunks of a job's attempt: a reattaching worker
        records the attempt's whole output again from its spool, so that
        no line is recorded twice and none is missing."""
        table = t.log_chunks
        with self.db.transaction() as conn:
            conn.execute(
                sa.delete(table).where(table.c.job_id == job_id, table.c.attempt == attempt)
            )

    def record_progress(self, job_id: str, attempt: int, data: Mapping[str, Any]) -> None:
        """Set the ``progress`` event (``value``, ``message``) of a job's attempt:
        one row per attempt, updated in place, so a long job's progress does not
        grow its events; the dashboard shows it while the job runs."""
        table = t.events
        values = {"data": dict(data), "time": epoch_now()}
        mine = (table.c.job_id == job_id, table.c.attempt == attempt, table.c.kind == "progress")
        with self.db.transaction() as conn:
            if conn.execute(sa.update(table).where(*mine).values(values)).rowcount == 0:
                conn.execute(
                    table.insert().values(job_id=job_id, kind="progress", attempt=attempt, **values)
                )

    def register_worker(
        self,
        worker_id: str,
        slots: int,
        lease: float = 30.0,
        sandboxes: Sequence[str] | None = None,
        *,
        queues: Sequence[str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """Record a starting worker (or a restarted one under the same id), with
        the sandbox backends it runs jobs in (``None``: any), the queues it
        serves (``None``: every queue), the labels it offers, and this
        stockade's version.

        Raises :class:`~stockade.errors.NameInUse`, changing nothing, while
        another live process holds ``worker_id`` (see
        :mod:`~stockade.store.liveness`): two workers under one name would
        take each other's jobs for their own. ``lease`` is how long the
        worker's heartbeat may be missed before others take it for dead."""
        table, now, here = t.workers, epoch_now(), liveness.this_process()
        values: dict[str, Any] = {
            "hostname": here.hostname,
            "boot_id": here.boot_id,
            "pid": here.pid,
            "pid_start": here.pid_start,
            "lease": lease,
            "slots": slots,
            "sandboxes": None if sandboxes is None else list(sandboxes),
            "queues": None if queues is None else list(queues),
            "labels": dict(labels or {}),
            "version": __version__,
            "started_at": now,
            "last_seen": now,
            "stopped_at": None,
            "counters": {},
        }
        held = sa.select(table, now.label("now")).where(table.c.id == worker_id).with_for_update()
        with self.db.transaction() as conn:
            row = conn.execute(held).mappings().first()
            if row is None:
                insert = _insert(self.db.dialect, table).values(id=worker_id, **values)
                if conn.execute(insert.on_conflict_do_nothing().returning(table.c.id)).first():
                    return
                row = conn.execute(held).mappings().one()  # registered meanwhile
            if liveness.holds_name(dict(row), row["now"], lease, here):
                raise NameInUse(worker_id, f"pid {row['pid']} on {row['hostname']}")
            conn.execute(sa.update(table).where(table.c.id == worker_id).values(values))

    def worker_seen(
        self, worker_id: str, counters: Mapping[str, int], *, stopped: bool = False
    ) -> None:
        """Update a worker's ``last_seen`` and counters (and ``stopped_at`` when it stops)."""
        table = t.workers
        values: dict[str, Any] = {"last_seen": epoch_now(), "counters": dict(counters)}
        if stopped:
            values["stopped_at"] = epoch_now()
        with self.db.transaction() as conn:
            conn.execute(sa.update(table).where(table.c.id == worker_id).values(values))
