"""The outbox of job-end notifications: queued with the end, claimed, sent, recorded.

When a job reaches a final state, each ``notify`` entry of its frozen spec
whose ``on`` matches becomes a ``notifications`` row *in the transaction
that records the end* (:func:`end_rows` on the worker's direct path,
:func:`queue_ended` on the others): the end and its notifications commit
together or not at all, and sending them never delays recording.

A sender (:mod:`stockade.engine.notifier`) claims due rows: one UPDATE
moves them to ``sending`` with a lease and a fresh token (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; SQLite serializes writers), so two senders never
hold one row at a time. The outcome is written only by the token's holder;
a sender that died leaves a lease that lapses, and the row is claimed
again: delivery is *at least once* (receivers dedupe on the delivery id).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stockade.store import schema as t
from stockade.store.database import Database
from stockade.store.direct import insert_batch
from stockade.store.outboxview import SHOWN, delivery_id, shown
from stockade.store.schema import epoch_now

__all__ = [
    "ENDED", "HISTORY_MAX", "SHOWN", "Delivery", "Outbox", "delivery_id", "end_rows", "ended_rows",
    "queue_ended", "shown", "summary",
]  # fmt: skip

#: Tries kept in a row's ``history`` (the newest); ``tries`` counts them all.
HISTORY_MAX = 20
_FINAL = ("succeeded", "failed", "cancelled")

INSERT = insert_batch(
    t.notifications, "job_id", "attempt", "target", "kind", "spec", "body", "state", "due",
    "created_at", "updated_at",
)  # fmt: skip


def summary(job: Mapping[str, Any]) -> dict[str, Any]:
    """The job's summary a notification carries (no input, outputs or secrets)."""
    keys = ("id", "task", "state", "outcome", "reason", "error", "exit_code", "signal",
            "attempts", "max_attempts", "run_id", "step")  # fmt: skip
    return {key: job.get(key) for key in keys}


def _wanted(note: Mapping[str, Any], state: str, reason: str | None) -> bool:
    on = note.get("on") or ["failed"]
    return state in on or (reason is not None and reason in on)


def end_rows(
    spec: Mapping[str, Any], job: Mapping[str, Any], attempt: int | None, now: float
) -> list[tuple[Any, ...]]:
    """The :data:`INSERT` rows of a job that just ended (``job``: its summary
    fields, ``state`` final): one per ``notify`` entry of ``spec`` it matches."""
    notes = spec.get("notify")
    if not notes or job.get("state") not in _FINAL:
        return []
    rows = []
    body = summary(job)
    for target, note in enumerate(notes):
        if not _wanted(note, str(job["state"]), job.get("reason")):
            continue
        kind = "webhook" if note.get("url") else "command"
        message = {"event": "job.ended", "delivery": delivery_id(job["id"], target), "job": body}
        rows.append((job["id"], attempt, target, kind, note, message, "pending", now, now, now))
    return rows


#: The job fields :func:`end_rows` reads, in order (``spec`` among them).
ENDED = (
    "id", "task", "spec", "state", "outcome", "reason", "error", "exit_code", "signal",
    "attempts", "max_attempts", "run_id", "step", "runs",
)  # fmt: skip


def ended_rows(selected: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """The :data:`INSERT` rows of the ended jobs ``selected`` (each its
    :data:`ENDED` fields, then the time now)."""
    rows: list[tuple[Any, ...]] = []
    for row in selected:
        job = dict(zip(ENDED, row, strict=False))
        spec = job.pop("spec") or {}
        if spec.get("notify"):
            rows.extend(end_rows(spec, job, job.get("runs") or None, row[-1]))
    return rows


def queue_ended(conn: Connection, job_ids: Iterable[str]) -> int:
    """Queue the notifications of ``job_ids`` that have just ended, inside
    ``conn``'s transaction (the paths that end a job through Core: recovery,
    release, a cancel); how many were queued."""
    ids = list(dict.fromkeys(job_ids))
    if not ids:
        return 0
    jobs = t.jobs
    query = sa.select(*(jobs.c[c] for c in ENDED), epoch_now()).where(
        jobs.c.id.in_(ids), jobs.c.state.in_(_FINAL)
    )
    rows = ended_rows(conn.execute(query))
    if rows:
        conn.execute(
            t.notifications.insert(), [dict(zip(INSERT.args, r, strict=True)) for r in rows]
        )
    return len(rows)


@dataclass
class Delivery:
    """A claimed notification: what to send, and the token that may record it."""

    id: int
    job_id: str
    kind: str
    spec: dict[str, Any]
    body: dict[str, Any]
    tries: int
    token: str
    history: list[dict[str, Any]] = field(default_factory=list)


_CLAIMED = ("id", "job_id", "kind", "spec", "body", "tries", "history")


class Outbox:
    """Claim due notifications, record how each try went, list a job's."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, limit: int, lease: float) -> list[Delivery]:
        """Up to ``limit`` due notifications (pending and due, or sending with a
        lapsed lease), now ``sending`` for ``lease`` seconds under a new token."""
        n, now = t.notifications, epoch_now()
        due = sa.or_(
            sa.and_(n.c.state == "pending", n.c.due <= now),
            sa.and_(n.c.state == "sending", n.c.lease_expires < now),
        )
        # Every worker asks every second: a read first, so that an empty outbox
        # costs no write (on SQLite, no write lock and no wakeup of idle workers).
        with self.db.read() as conn:
            if conn.execute(sa.select(n.c.id).where(due).limit(1)).first() is None:
                return []
        candidates = (
            sa.select(n.c.id).where(due).order_by(n.c.due).limit(limit)
            .with_for_update(skip_locked=True)
        )  # fmt: skip
        token = secrets.token_hex(16)
        claim = {"state": "sending", "lease_expires": now + lease, "token": token,
                 "tries": n.c.tries + 1, "updated_at": now}  # fmt: skip
        stmt = (
            sa.update(n)
            .where(n.c.id.in_(candidates.scalar_subquery()))
            .values(claim)
            .returning(*(n.c[c] for c in _CLAIMED))
        )
        with self.db.transaction() as conn:
            found = conn.execute(stmt).all()
        claimed = [dict(zip(_CLAIMED, row, strict=True)) for row in found]
        for row in claimed:
            row["history"] = row["history"] or []
        return [Delivery(**row, token=token) for row in claimed]

    def record(
        self,
        delivery: Delivery,
        try_: dict[str, Any],
        *,
        delivered: bool,
        retry_in: float | None,
    ) -> bool:
        """Record one try (``try_``: its time, status, error): ``delivered``,
        else due again in ``retry_in`` seconds, else (``None``) given up.
        Whether the token still held the row (a lapsed lease lost it)."""
        n = t.notifications
        history = [*delivery.history, try_][-HISTORY_MAX:]
        values: dict[str, Any] = {"history": history, "lease_expires": None, "token": None,
                                  "updated_at": epoch_now()}  # fmt: skip
        if delivered:
            values["state"] = "delivered"
        elif retry_in is not None:
            values |= {"state": "pending", "due": epoch_now() + retry_in}
        else:
            values["state"] = "failed"
        stmt = sa.update(n).where(n.c.id == delivery.id, n.c.token == delivery.token)
        with self.db.transaction() as conn:
            return conn.execute(stmt.values(values)).rowcount == 1

    def of_job(self, job_id: str) -> list[dict[str, Any]]:
        """The notifications of ``job_id``, oldest first (see :func:`shown`)."""
        n = t.notifications
        query = sa.select(*(n.c[c] for c in SHOWN)).where(n.c.job_id == job_id).order_by(n.c.id)
        with self.db.read() as conn:
            rows = [dict(zip(SHOWN, row, strict=True)) for row in conn.execute(query)]
        return shown(job_id, rows)

    def counts(self) -> dict[str, int]:
        """Notifications by state (for metrics)."""
        n = t.notifications
        query = sa.select(n.c.state, sa.func.count()).group_by(n.c.state)
        with self.db.read() as conn:
            return {state: int(count) for state, count in conn.execute(query)}
