"""Concurrency keys, unique keys and dependencies: which queued jobs are let go.

A job submitted with a concurrency key or ``--after`` other jobs is written
*held*: ``queued`` with ``run_after`` at :data:`~stockade.store.gatewait.HELD`,
so the claim's own ``run_after <= now`` keeps it out. The claim statement is
untouched: a claim (with keys or without) costs what it did, and no claim
can take more jobs of a key than its limit, since every job it may take
was let go by a transaction that counted under the key's lock.

The store lets a held job go (``run_after = now``) in the transaction that
makes it claimable:

* **dependencies**: when the last job it waits on ends as it must (succeeded;
  with ``after_any``, any end). When one fails or is cancelled first (without
  ``after_any``) the held job fails at once, reason ``dependency_failed``,
  and so do the jobs waiting on it in turn. A job can wait only on jobs that
  exist when it is submitted, so there are no cycles.
* **concurrency keys**: at most ``concurrency_limit`` jobs of a key *hold a
  slot* (queued and let go, or running; a retry waiting out its backoff keeps
  its slot). When a holder ends, or a job of the key is submitted or its
  dependencies are met, the oldest held jobs of the key get the free slots:
  submission order within a key.

Every decision is one transaction. On PostgreSQL a key is serialized by a
transaction-scoped advisory lock on its name (counting the holders and
letting the next go cannot interleave with another transaction doing the
same); a dependent's row is locked before its dependencies are read again,
and a submit marks each job it waits on (``followers``, an UPDATE) so that
a dependency ending concurrently sees the mark once the submit commits.
SQLite runs one writer at a time. Locks are taken rows first, then keys
(sorted), everywhere: no deadlock between submits, ends and cancels. So
that a key's decision never waits on a row, it skips held jobs another
transaction has locked, and every transaction that locks held jobs (a
cancel, a retry, a submit ``--after`` them) decides their keys itself
before it commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from stockade.errors import DependencyError
from stockade.reasons import Reason
from stockade.store import schema as t
from stockade.store.base import JOBS_CHANNEL, LOGS_CHANNEL, logs_payload
from stockade.store.direct import Statement, Tx, insert_batch
from stockade.store.gatewait import HELD
from stockade.store.outbox import ENDED, ended_rows
from stockade.store.outbox import INSERT as _INSERT_NOTIFICATION
from stockade.store.records import NewJob
from stockade.store.schema import epoch_now
from stockade.store.states import JobState, check

__all__ = [
    "admit", "decide_locked", "live_of_key", "prepare", "release", "requeue", "settle",
    "settle_ids",
]  # fmt: skip

Q, R = JobState.QUEUED, JobState.RUNNING
jobs, deps = t.jobs, t.job_deps
#: The most held jobs of one key let go by one decision (the rest at the next).
_HEADS_MAX = 1000
#: What a unique key matches, by its ``while``.
WHILE = {"queued": (Q.value,), "running": (Q.value, R.value)}

_Ids = Callable[[Any], Any]


def _per_dialect(build: Callable[[_Ids], Any], args: Sequence[str]) -> dict[str, Statement]:
    """A statement over a list of ids (``b_ids``) for each store: an array on
    PostgreSQL, a JSON list on SQLite (one statement for any length)."""

    def pg(column: Any) -> Any:
        return column == sa.any_(sa.bindparam("b_ids", type_=postgresql.ARRAY(sa.String)))

    def lite(column: Any) -> Any:
        values = sa.func.json_each(sa.bindparam("b_ids", type_=sa.JSON)).table_valued("value")
        return column.in_(sa.select(values.c.value))

    return {
        "postgresql": Statement(build(pg), args, only=["postgresql"]),
        "sqlite": Statement(build(lite), args, only=["sqlite"]),
    }


def _param(name: str, type_: Any = sa.String) -> Any:
    return sa.bindparam(name, type_=type_)


def _held_key() -> Any:
    """A job's concurrency key if it is held and so may be a key's next
    (``NULL`` otherwise): a transaction that locked it must decide its key,
    as :func:`release` skips the rows others hold locked."""
    held = sa.and_(jobs.c.state == Q.value, jobs.c.run_after >= HELD)
    return sa.case((held, jobs.c.concurrency_key), else_=sa.null()).label("held_key")


def _live() -> Any:
    """``queued`` or ``running``, spelled without an expanding ``IN`` (which
    a statement compiled once cannot carry)."""
    return sa.or_(jobs.c.state == Q.value, jobs.c.state == R.value)


_NOW = Statement(sa.select(epoch_now()), ())
_KEY_LOCK = Statement(
    sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(_param("b_key"), 0))),
    ("b_key",),
    only=["postgresql"],
)
_HELD_KEYS = _per_dialect(
    lambda ids: sa.select(_held_key()).where(ids(jobs.c.id), jobs.c.concurrency_key.is_not(None)),
    ("b_ids",),
)
_ENDED_ROWS = _per_dialect(
    lambda ids: sa.select(*(jobs.c[c] for c in ENDED), epoch_now()).where(ids(jobs.c.id)),
    ("b_ids",),
)
_FOLLOWERS = _per_dialect(
    lambda ids: sa.select(deps.c.job_id).distinct().where(ids(deps.c.after_id)), ("b_ids",)
)
_LOCK_WAITING = _per_dialect(
    lambda ids: (
        sa.select(jobs.c.id, jobs.c.after_any, jobs.c.concurrency_key, jobs.c.followers)
        .where(ids(jobs.c.id), jobs.c.state == Q.value, jobs.c.deps_pending)
        .order_by(jobs.c.id)
        .with_for_update()
    ),
    ("b_ids",),
)
_DEP_STATES = _per_dialect(
    lambda ids: (
        sa.select(deps.c.job_id, deps.c.after_id, jobs.c.state)
        .select_from(deps.join(jobs, jobs.c.id == deps.c.after_id))
        .where(ids(deps.c.job_id))
        .order_by(deps.c.job_id, deps.c.after_id)
    ),
    ("b_ids",),
)
_GATES_OF = _per_dialect(
    lambda ids: sa.select(jobs.c.id, jobs.c.concurrency_key, jobs.c.followers).where(
        ids(jobs.c.id), sa.or_(jobs.c.concurrency_key.is_not(None), jobs.c.followers)
    ),
    ("b_ids",),
)
_LOCK_DEPS = _per_dialect(
    lambda ids: (
        sa.select(jobs.c.id, jobs.c.run_id, _held_key())
        .where(ids(jobs.c.id))
        .order_by(jobs.c.id)
        .with_for_update()
    ),
    ("b_ids",),
)
_MARK_FOLLOWED = _per_dialect(
    lambda ids: (
        sa.update(jobs).where(ids(jobs.c.id), jobs.c.followers.is_(False)).values(followers=True)
    ),
    ("b_ids",),
)
_REGATE = _per_dialect(
    lambda ids: (
        sa.update(jobs)
        .where(
            ids(jobs.c.id),
            jobs.c.state == Q.value,
            sa.or_(jobs.c.concurrency_key.is_not(None), jobs.c.after_ids.is_not(None)),
        )
        .values(run_after=HELD, deps_pending=jobs.c.after_ids.is_not(None))
        .returning(jobs.c.id, jobs.c.concurrency_key, jobs.c.after_ids.is_not(None))
    ),
    ("b_ids",),
)
_FAIL = Statement(
    sa.update(jobs)
    .where(jobs.c.id == _param("b_id"), jobs.c.state == Q.value)
    .values(
        state=JobState.FAILED.value,
        outcome="failed",
        reason=Reason.DEPENDENCY_FAILED.value,
        error=_param("b_error", sa.Text),
        deps_pending=False,
        run_after=epoch_now(),
        finished_at=epoch_now(),
        updated_at=epoch_now(),
    ),
    ("b_id", "b_error"),
)
_SATISFY = Statement(
    sa.update(jobs)
    .where(jobs.c.id == _param("b_id"), jobs.c.state == Q.value)
    .values(
        deps_pending=False,
        updated_at=epoch_now(),
        run_after=sa.case((jobs.c.concurrency_key.is_(None), epoch_now()), else_=jobs.c.run_after),
    ),
    ("b_id",),
)
_HOLDERS = Statement(
    sa.select(sa.func.count()).where(
        jobs.c.concurrency_key == _param("b_key"),
        _live(),
        jobs.c.run_after < HELD,
    ),
    ("b_key",),
)
_HEADS = Statement(
    sa.select(jobs.c.id, jobs.c.concurrency_limit)
    .where(
        jobs.c.concurrency_key == _param("b_key"),
        jobs.c.state == Q.value,
        jobs.c.run_after >= HELD,
        jobs.c.deps_pending.is_(False),
    )
    .order_by(jobs.c.created_at)
    .limit(_HEADS_MAX)
    .with_for_update(skip_locked=True),
    ("b_key",),
)
_RELEASE = Statement(
    sa.update(jobs)
    .where(jobs.c.id == _param("b_id"), jobs.c.state == Q.value)
    .values(run_after=epoch_now(), updated_at=epoch_now()),
    ("b_id",),
)
_UNIQUE = {
    name: Statement(
        sa.select(jobs.c.id)
        .where(jobs.c.unique_key == _param("b_key"), sa.or_(*[jobs.c.state == s for s in states]))
        .order_by(jobs.c.created_at)
        .limit(1),
        ("b_key",),
    )
    for name, states in WHILE.items()
}
_LIVE_OF_KEY = Statement(
    sa.select(jobs.c.id)
    .where(
        jobs.c.concurrency_key == _param("b_key"),
        _live(),
        jobs.c.created_at < _param("b_created", jobs.c.created_at.type),
        jobs.c.run_id.is_(None),
    )
    .order_by(jobs.c.created_at),
    ("b_key", "b_created"),
)
_INSERT_DEPS = insert_batch(deps, "job_id", "after_id")
_INSERT_EVENT = insert_batch(t.events, "job_id", "kind", "attempt", "data", "time")


def _lock_key(tx: Tx, key: str) -> None:
    """Serialize the decisions about ``key`` (PostgreSQL; SQLite has one writer)."""
    if tx.dialect == "postgresql":
        tx.execute(_KEY_LOCK, (key,))


# -- submit ------------------------------------------------------------------


def prepare(
    tx: Tx, new: Sequence[tuple[NewJob, str]]
) -> tuple[list[tuple[NewJob, str]], dict[str, str], set[str]]:
    """Before inserting ``new``: check and mark the jobs they wait on, and
    match their unique keys. ``(the pairs to insert, {id: the live job a
    duplicate gets instead}, the keys of held jobs locked here)``: the
    caller passes those to :func:`admit`.

    Raises :class:`DependencyError` for an ``after`` that names no job, or a
    job of a pipeline run (its scheduler, not the store, ends it).
    """
    wanted = sorted({a for job, _ in new for a in job.after})
    locked_keys: set[str] = set()
    if wanted:
        found: dict[str, str | None] = {}
        for jid, run_id, held_key in tx.rows(_LOCK_DEPS[tx.dialect], (wanted,)):
            found[jid] = run_id
            if held_key is not None:
                locked_keys.add(held_key)
        missing = [a for a in wanted if a not in found]
        if missing:
            raise DependencyError(
                f"--after: no job {missing[0]} (give the full id of a job that exists)"
            )
        in_run = [a for a in wanted if found[a] is not None]
        if in_run:
            raise DependencyError(
                f"--after: job {in_run[0]} is part of pipeline run {found[in_run[0]]};"
                " wait on jobs submitted on their own"
            )
        tx.execute(_MARK_FOLLOWED[tx.dialect], (wanted,))
    keys = sorted({job.unique_key for job, _ in new if job.unique_key is not None})
    if not keys:
        return list(new), {}, locked_keys
    for key in keys:
        _lock_key(tx, f"u:{key}")
    kept: list[tuple[NewJob, str]] = []
    existing: dict[str, str] = {}
    taken: dict[str, str] = {}  # unique key → the job of this batch that has it
    for job, jid in new:
        unique = job.unique_key
        if unique is None:
            kept.append((job, jid))
            continue
        same = taken.get(unique)
        if same is None:
            found_rows = tx.rows(_UNIQUE[job.unique_while], (unique,))
            same = found_rows[0][0] if found_rows else None
        if same is not None:
            existing[jid] = same
            continue
        taken[unique] = jid
        kept.append((job, jid))
    return kept, existing, locked_keys


def admit(tx: Tx, new: Sequence[tuple[NewJob, str]], locked: Iterable[str] = ()) -> None:
    """After inserting held jobs ``new``: record what they wait on, let go
    those whose dependencies are met and whose key has a free slot (and
    decide the ``locked`` keys :func:`prepare` returned)."""
    links = [(jid, a) for job, jid in new for a in dict.fromkeys(job.after)]
    keys = {job.concurrency_key for job, _ in new if job.concurrency_key is not None}
    keys.update(locked)
    if links:
        tx.many(_INSERT_DEPS, links)
        keys |= _evaluate(tx, [jid for job, jid in new if job.after])
    release(tx, keys)


def live_of_key(tx: Tx, key: str, created_before: float) -> list[str]:
    """The live jobs of concurrency key ``key`` older than ``created_before``
    (those a ``cancel_in_progress`` job supersedes)."""
    return [row[0] for row in tx.rows(_LIVE_OF_KEY, (key, created_before))]


# -- ends ---------------------------------------------------------------------


def settle(tx: Tx, ended: Iterable[tuple[str, str | None, bool]]) -> None:
    """After jobs ended (``(id, concurrency key, followers)``, in this
    transaction): fail or let go the jobs waiting on them, and give the
    slots they held to the next jobs of their keys."""
    keys: set[str] = set()
    parents: list[str] = []
    for jid, key, followers in ended:
        if key is not None:
            keys.add(key)
        if followers:
            parents.append(jid)
    if parents:
        keys |= _dependents(tx, parents)
    release(tx, keys)


def settle_ids(tx: Tx, ids: Sequence[str]) -> None:
    """:func:`settle` for jobs known by id only (the rarer paths: cancel,
    recovery, a worker giving a job back)."""
    if ids:
        rows = tx.rows(_GATES_OF[tx.dialect], (list(ids),))
        settle(tx, [(jid, key, bool(followers)) for jid, key, followers in rows])


def decide_locked(tx: Tx, ids: Sequence[str]) -> None:
    """Decide the keys of the held jobs among ``ids``, which this transaction
    locked (:func:`release` skips rows others hold locked, so whoever holds
    one decides its key before it commits)."""
    if ids:
        rows = tx.rows(_HELD_KEYS[tx.dialect], (list(ids),))
        release(tx, {key for (key,) in rows if key is not None})


def requeue(tx: Tx, ids: Sequence[str]) -> None:
    """Hold again the jobs among ``ids`` (just queued again by a retry) that
    have a key or dependencies, and decide them as if just submitted."""
    if not ids:
        return
    rows = tx.rows(_REGATE[tx.dialect], (list(ids),))
    keys = {key for _, key, _ in rows if key is not None}
    waiting = [jid for jid, _, has_after in rows if has_after]
    if waiting:
        keys |= _evaluate(tx, waiting)
    release(tx, keys)


def _dependents(tx: Tx, parents: list[str]) -> set[str]:
    """Decide the jobs waiting on ``parents``, and on those that fail in turn;
    the keys of the jobs whose dependencies are now met."""
    keys: set[str] = set()
    while parents:
        waiting = [row[0] for row in tx.rows(_FOLLOWERS[tx.dialect], (parents,))]
        if not waiting:
            break
        failed: list[str] = []
        keys |= _evaluate(tx, waiting, failed)
        parents = failed
    return keys


def _evaluate(tx: Tx, ids: list[str], failed: list[str] | None = None) -> set[str]:
    """Lock the jobs among ``ids`` still waiting on others, read their
    dependencies' states, fail or let go those now decided. The keys of the
    ones let go that have a key (their slot is decided by :func:`release`);
    the ids of the failed ones that others wait on go to ``failed``."""
    locked = {
        jid: (bool(any_end), key, bool(followers))
        for jid, any_end, key, followers in tx.rows(_LOCK_WAITING[tx.dialect], (ids,))
    }
    if not locked:
        return set()
    states: dict[str, list[tuple[str, JobState]]] = {}
    for jid, after_id, state in tx.rows(_DEP_STATES[tx.dialect], (list(locked),)):
        states.setdefault(jid, []).append((after_id, JobState(state)))
    keys: set[str] = set()
    events: list[tuple[Any, ...]] = []
    ended: list[str] = []
    let_go = False
    for jid, (any_end, key, followers) in locked.items():
        verdict = _verdict(states.get(jid, []), any_end)
        if verdict is None:
            continue
        if verdict:
            tx.execute(_SATISFY, (jid,))
            if key is None:
                let_go = True
            else:
                keys.add(key)
            continue
        after_id, state = next(
            (a, s) for a, s in states[jid] if s in (JobState.FAILED, JobState.CANCELLED)
        )
        check(Q, JobState.FAILED)
        error = f"job {after_id} it runs after was {state.value}"
        tx.execute(_FAIL, (jid, error))
        events.append((jid, "failed", None, {"reason": Reason.DEPENDENCY_FAILED.value,
                                              "after": after_id}))  # fmt: skip
        ended.append(jid)
        if key is not None:
            keys.add(key)  # it held no slot; harmless, and keeps the rule simple
        if followers and failed is not None:
            failed.append(jid)
        elif followers:
            keys |= _dependents(tx, [jid])
    if events:
        ((now,),) = tx.rows(_NOW)
        tx.many(_INSERT_EVENT, [(*e, now) for e in events])
        _queue_notifications(tx, ended)
        tx.notify(LOGS_CHANNEL, logs_payload(ended))
    if let_go:
        tx.notify(JOBS_CHANNEL)
    return keys


def _queue_notifications(tx: Tx, ended: list[str]) -> None:
    """Queue the notifications of the jobs ``ended`` failed (their spec's
    ``notify``), in the transaction that failed them."""
    notes = ended_rows(tx.rows(_ENDED_ROWS[tx.dialect], (ended,)))
    tx.many(_INSERT_NOTIFICATION, notes)


def _verdict(states: list[tuple[str, JobState]], any_end: bool) -> bool | None:
    """Whether a job waiting on jobs in ``states`` may run (``True``), must
    fail (``False``), or waits on (``None``)."""
    ended = [s for _, s in states if s not in (Q, R)]
    if any_end:
        return True if len(ended) == len(states) else None
    if any(s in (JobState.FAILED, JobState.CANCELLED) for s in ended):
        return False
    return True if len(ended) == len(states) else None


def release(tx: Tx, keys: Iterable[str]) -> None:
    """Give the free slots of ``keys`` to their oldest held jobs."""
    let_go = False
    for key in sorted(set(keys)):
        _lock_key(tx, f"c:{key}")
        ((held,),) = tx.rows(_HOLDERS, (key,))
        for jid, limit in tx.rows(_HEADS, (key,)):
            if held >= (limit or 1):
                break
            tx.execute(_RELEASE, (jid,))
            held += 1
            let_go = True
    if let_go:
        tx.notify(JOBS_CHANNEL)
