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

The worker's path (:meth:`JobManager.claim`, :meth:`JobManager.finish_and_claim`)
runs its statements on the driver's cursor (:mod:`~stockade.store.direct`):
the same Core statements, compiled once, without Core's per-execute cost on
a thread that shares the GIL with the jobs' event loop.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from stockade.errors import StoreError, UsageError
from stockade.reasons import Reason
from stockade.runner.policy import backoff_delay
from stockade.runner.result import Outcome, Result
from stockade.store import gates
from stockade.store import schema as t
from stockade.store.base import CANCEL_CHANNEL, JOBS_CHANNEL, LOGS_CHANNEL, logs_payload
from stockade.store.direct import Batch, Statement, Tx, insert_batch, row_source
from stockade.store.gatewait import HELD_SQL
from stockade.store.ids import new_job_id
from stockade.store.jobinsert import job_rows, write_jobs
from stockade.store.outbox import INSERT as _INSERT_NOTIFICATION
from stockade.store.outbox import end_rows, queue_ended
from stockade.store.policy import MAX_TRANSIENT, Step, next_step
from stockade.store.records import Claim, NewJob
from stockade.store.requests import UserRequests
from stockade.store.routesql import (
    ROUTING_ARGS,
    SHAPES,
    Shape,
    claim_args,
    queue_shape,
    routing_conditions,
)
from stockade.store.routing import Offer
from stockade.store.rows import JOB_COLUMNS, lost_claim, result_json
from stockade.store.schema import epoch_now
from stockade.store.states import JobState, check
from stockade.store.usage import usage_columns

__all__ = ["CANCEL_CHANNEL", "JOBS_CHANNEL", "JobManager"]


Q, R = JobState.QUEUED, JobState.RUNNING
_LOST_COLUMNS = [t.jobs.c[name] for name in (*Claim.POLICY_COLUMNS, "cancel_requested")]
_SUMMARY = ("outcome", "reason", "error", "exit_code", "signal")
_PRIORITY = Claim.COLUMNS.index("priority")  # where a claim's row has it


def _returned(name: str) -> Any:
    """A claimed job's column as the claim returns it: ``spec`` as its JSON
    text (see :meth:`Claim.from_values`), the others as they are."""
    column = t.jobs.c[name]
    return sa.cast(column, sa.Text).label(name) if name == "spec" else column


def _claim_statement(row: str = "rowid", shape: Shape = "any") -> Any:
    """``queued → running`` for the first ``b_limit`` runnable jobs (priority, then age).

    Built once: SQLAlchemy memoizes a statement's cache key, so executing the
    same object costs no construction and no key generation. The saved state
    comes back in the RETURNING clause, so a claim needs no extra lookup;
    the age comes last, for :func:`_in_claim_order` (RETURNING has no order).

    The candidates are updated by their physical row (``row``: SQLite's
    ``rowid``, PostgreSQL's ``ctid``, stable while the claim holds the row
    lock), the one join the planner cannot get wrong: joined by id,
    PostgreSQL with stale statistics once drove the join from a scan of
    every queued job, probing the candidates for each.

    ``shape``: the queues the worker serves (see :mod:`~stockade.store.routesql`).
    """
    check(Q, R)
    jobs, now = t.jobs, epoch_now()
    dialect = "sqlite" if row == "rowid" else "postgresql"
    physical: sa.ColumnElement[Any] = sa.literal_column(f"jobs.{row}")
    candidates = (
        sa.select(physical.label("tid"))
        .where(
            jobs.c.state == Q.value,
            jobs.c.run_after <= now,
            # The claim index's own predicate, as written there: held jobs
            # (stockade.store.gates) are not in it.
            jobs.c.run_after < sa.literal_column(HELD_SQL),
            # Routing: queue, labels and sandbox (stockade.store.routesql).
            *routing_conditions(dialect, shape),
        )
        .order_by(jobs.c.priority.desc(), jobs.c.created_at)
        .limit(sa.bindparam("b_limit", type_=sa.Integer))
        .with_for_update(skip_locked=True)
        .cte("candidates")
    )
    saved = (
        sa.select(t.saved_state.c.data)
        .where(t.saved_state.c.job_id == jobs.c.id)
        .correlate(jobs)
        .scalar_subquery()
        .label("saved")
    )
    return (
        sa.update(jobs)
        .where(physical == candidates.c.tid, jobs.c.state == Q.value)
        .values(
            state=R.value,
            attempts=jobs.c.attempts + 1,
            runs=jobs.c.runs + 1,
            worker_id=sa.bindparam("b_worker", type_=sa.String),
            lease_expires=now + sa.bindparam("b_lease", type_=jobs.c.lease_expires.type),
            started_at=now,
            updated_at=now,
        )
        .returning(*[_returned(name) for name in Claim.COLUMNS], saved, jobs.c.created_at)
    )


def _plan_lines(node: dict[str, Any]) -> Iterator[str]:
    """A PostgreSQL plan's nodes, depth first, one line each."""
    index = f" using {node['Index Name']}" if "Index Name" in node else ""
    relation = f" on {node['Relation Name']}" if "Relation Name" in node else ""
    yield f"{node['Node Type']}{index}{relation}"
    for child in node.get("Plans", ()):
        yield from _plan_lines(child)


def _in_claim_order(rows: Sequence[Sequence[Any]]) -> list[Claim]:
    """The claims of a claim's rows, priority then age: the order the worker
    starts them in. ``UPDATE … RETURNING`` returns rows in no set order
    (SQLite: the order it updated them in)."""
    ordered = sorted(rows, key=lambda row: (-row[_PRIORITY], row[-1]))
    return [Claim.from_values(row[:-1]) for row in ordered]


def _claim_and_start_statement(shape: Shape = "any") -> Any:
    """:func:`_claim_statement` that also inserts the claimed jobs' attempt rows
    and ``started`` events (``b_started``: the events' data), in one statement
    of data-modifying CTEs (PostgreSQL): one round trip instead of three."""
    claimed = _claim_statement("ctid", shape).cte("claimed")
    attempts = sa.insert(t.attempts).from_select(
        ["job_id", "attempt", "worker_id", "started_at"],
        sa.select(
            claimed.c.id, claimed.c.runs, sa.bindparam("b_worker", type_=sa.String),
            claimed.c.started_at,
        ),
    )  # fmt: skip
    events = sa.insert(t.events).from_select(
        ["job_id", "kind", "attempt", "data", "time"],
        sa.select(
            claimed.c.id, sa.literal("started", t.events.c.kind.type), claimed.c.runs,
            sa.bindparam("b_started", type_=t.events.c.data.type), claimed.c.started_at,
        ),
    )  # fmt: skip
    return sa.select(claimed).add_cte(attempts.cte("new_attempts"), events.cte("started"))


#: The parameters of an end's move (one row of :data:`_END`), in order; a
#: retry (:data:`_RETRY`) adds ``b_delay``.
_MOVE_PARAMS = (
    ("b_id", t.jobs.c.id.type),
    ("b_run", t.jobs.c.runs.type),
    ("b_state", t.jobs.c.state.type),
    *[(f"b_{k}", t.jobs.c[k].type) for k in _SUMMARY],
)
_DELAY = ("b_delay", t.jobs.c.run_after.type)
#: The parameters of an attempt's end (one row of :data:`_END_ATTEMPT`), in order.
_ATTEMPT_PARAMS = (
    ("b_id", t.attempts.c.job_id.type),
    ("b_run", t.attempts.c.attempt.type),
    ("b_duration", t.attempts.c.duration.type),
    ("b_result", t.attempts.c.result.type),
    ("b_cpu_seconds", t.attempts.c.cpu_seconds.type),
    ("b_memory_bytes", t.attempts.c.memory_bytes.type),
    *[(f"b_{k}", t.attempts.c[k].type) for k in _SUMMARY],
)


def _move_statement(retry: bool, rows: int = 0) -> Any:
    """The fenced ``running → b_state`` UPDATE of :meth:`JobManager.finish_many`
    for one row or ``rows`` rows (see :class:`~stockade.store.direct.Batch`):
    a retry sets ``run_after``, a final state ``finished_at``."""
    jobs, now = t.jobs, epoch_now()
    v = row_source((*_MOVE_PARAMS, _DELAY) if retry else _MOVE_PARAMS, rows)
    values: dict[str, Any] = {
        "state": v["b_state"],
        "updated_at": now,
        "worker_id": None,
        "lease_expires": None,
        **{k: v[f"b_{k}"] for k in _SUMMARY},
    }
    if retry:
        values["run_after"] = now + v["b_delay"]
    else:
        values["finished_at"] = now
    return (
        sa.update(jobs)
        .where(jobs.c.id == v["b_id"], jobs.c.runs == v["b_run"], jobs.c.state == R.value)
        .values(values)
    )


def _end_attempt_statement(rows: int = 0) -> Any:
    """The UPDATE that ends attempts, for one row or ``rows`` rows."""
    attempts, v = t.attempts, row_source(_ATTEMPT_PARAMS, rows)
    return (
        sa.update(attempts)
        .where(attempts.c.job_id == v["b_id"], attempts.c.attempt == v["b_run"])
        .values(
            finished_at=epoch_now(),
            duration=v["b_duration"],
            result=v["b_result"],
            cpu_seconds=v["b_cpu_seconds"],
            memory_bytes=v["b_memory_bytes"],
            **{k: v[f"b_{k}"] for k in _SUMMARY},
        )
    )


# The worker's path (record ends, claim successors) runs these on the
# driver's cursor (see stockade.store.direct); rows are tuples in args order.
# One claim per shape of the worker's queues (stockade.store.routesql); the
# routing parameters come last.
_CLAIM = {
    shape: Statement(
        _claim_statement("rowid", shape),
        ("b_limit", "b_worker", "b_lease", *ROUTING_ARGS[shape]),
        only=["sqlite"],
    )
    for shape in SHAPES
}
_CLAIM_AND_START = {
    shape: Statement(
        _claim_and_start_statement(shape),
        ("b_limit", "b_worker", "b_lease", "b_started", *ROUTING_ARGS[shape]),
        only=["postgresql"],
    )
    for shape in SHAPES
}
# The claim must walk ix_jobs_claim in order and stop after its limit. The
# planner picks that only when its statistics say many jobs are queued: on a
# table analyzed while the queue was short (a fresh one, or any burst), it
# bitmap-scans and sorts every queued job instead, 40 ms a claim with 20,000
# queued. Sorting off, for the claim's transaction only, leaves the index.
# And the plan is made once per connection, not at every claim: with a long
# queue PostgreSQL judged a plan for any limit costlier than one for the
# limit given, and planned the claim anew each time (0.6 ms of 2).
_CLAIM_PLANNING = Statement(
    sa.select(
        sa.func.set_config("enable_sort", "off", sa.true()),
        sa.func.set_config("plan_cache_mode", "force_generic_plan", sa.true()),
    ),
    (),
    only=["postgresql"],
)
_CANCEL_REQUESTS = Statement(
    sa.select(t.jobs.c.id, t.jobs.c.runs, t.jobs.c.cancel_forced).where(
        t.jobs.c.worker_id == sa.bindparam("b_worker", type_=sa.String),
        t.jobs.c.state == R.value,
        t.jobs.c.cancel_requested,
    ),
    ("b_worker",),
)
_END = Batch(partial(_move_statement, False), [name for name, _ in _MOVE_PARAMS])
_RETRY = Batch(partial(_move_statement, True), [name for name, _ in (*_MOVE_PARAMS, _DELAY)])


def _lock_running_statement(ids: Any) -> Any:
    """Lock the jobs among ``ids`` still running, in one order for every batch
    (no deadlock between batches); with the cancel flags, the clock, and what
    an end must settle (:mod:`~stockade.store.gates`): the concurrency key,
    whether jobs wait on it."""
    jobs = t.jobs
    return (
        sa.select(
            jobs.c.id,
            jobs.c.runs,
            jobs.c.cancel_requested,
            epoch_now(),
            jobs.c.concurrency_key,
            jobs.c.followers,
        )
        .where(ids, jobs.c.state == R.value)
        .order_by(jobs.c.id)
        .with_for_update()
    )


# One statement for any number of ids: an array on PostgreSQL, a JSON list on
# SQLite. An expanding IN list compiled a statement for every batch size.
_LOCK_RUNNING = {
    "postgresql": Statement(
        _lock_running_statement(
            t.jobs.c.id == sa.any_(sa.bindparam("b_ids", type_=postgresql.ARRAY(sa.String)))
        ),
        ("b_ids",),
        only=["postgresql"],
    ),
    "sqlite": Statement(
        _lock_running_statement(
            t.jobs.c.id.in_(
                sa.select(
                    sa.func.json_each(sa.bindparam("b_ids", type_=sa.JSON))
                    .table_valued("value")
                    .c.value
                )
            )
        ),
        ("b_ids",),
        only=["sqlite"],
    ),
}
_END_ATTEMPT = Batch(_end_attempt_statement, [name for name, _ in _ATTEMPT_PARAMS])
_INSERT_ATTEMPT = insert_batch(t.attempts, "job_id", "attempt", "worker_id", "started_at")
_INSERT_EVENT = insert_batch(t.events, "job_id", "kind", "attempt", "data", "time")
_INSERT_JOB = insert_batch(t.jobs, *JOB_COLUMNS)
_INSERT_QUEUED = insert_batch(t.events, "job_id", "kind", "time")
_NOW = Statement(sa.select(epoch_now()), ())
_INSERT_OUTPUT = insert_batch(t.outputs, "job_id", "attempt", "data")
_UPDATE_SAVED = Statement(
    sa.update(t.saved_state)
    .where(t.saved_state.c.job_id == sa.bindparam("b_id", type_=sa.String))
    .values(
        attempt=sa.bindparam("b_run", type_=sa.Integer),
        data=sa.bindparam("b_data", type_=t.saved_state.c.data.type),
    ),
    ("b_id", "b_run", "b_data"),
)
_INSERT_SAVED = Statement(
    t.saved_state.insert(), ("job_id", "attempt", "data"), columns=("job_id", "attempt", "data")
)


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
        order given among jobs of equal priority, and after those submitted
        earlier through the same store. A job whose unique key matches a live
        job gets that job's id instead (see :meth:`place`).
        """
        return [jid for jid, _ in self.place(new)]

    def place(self, new: Sequence[NewJob]) -> list[tuple[str, bool]]:
        """:meth:`submit`, telling for each job ``(id, created)``: ``created``
        is false for a job whose unique key matched a live job, whose id it
        gets. Jobs with ``cancel_in_progress`` then cancel the older live jobs
        of their concurrency key (through :meth:`cancel`, after the submit
        committed: the rows are locked before the keys, everywhere)."""
        ids = [job.id or new_job_id() for job in new]
        if not new:
            return []
        existing: dict[str, str] = {}
        with self.db.direct() as tx:
            rows = self._enqueue(tx, list(zip(new, ids, strict=True)), existing)
        if any(job.cancel_in_progress for job in new):
            created = {row["id"]: row["created_at"] for row in rows}
            self.supersede([(job, jid, created[jid]) for job, jid in zip(new, ids, strict=True)
                            if jid in created])  # fmt: skip
        return [(existing.get(jid, jid), jid not in existing) for jid in ids]

    def supersede(self, made: Sequence[tuple[NewJob, str, float]]) -> None:
        """For each job just made, ``(job, id, created_at)``, with
        ``cancel_in_progress``: cancel the older live jobs of its concurrency
        key (reason ``superseded``). A transaction of its own, after the
        submit's: a cancel locks rows, then keys, like every other path."""
        for job, jid, created in made:
            if not job.cancel_in_progress or job.concurrency_key is None:
                continue
            with self.db.direct(read=True) as tx:
                older = gates.live_of_key(tx, job.concurrency_key, created)
            if older:
                self.cancel(older, superseded_by=jid)

    def enqueue(
        self,
        conn: Connection,
        new: Sequence[tuple[NewJob, str]],
        existing: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Insert ``(job, id)`` pairs as ``queued`` inside ``conn``'s write
        transaction: the rows, their ``queued`` events and the workers' wakeup;
        the rows as inserted. For callers that decide in the same transaction
        what to insert (the HTTP service's group commit). A job whose unique
        key matched a live job is not inserted: ``existing`` maps its id to
        that job's."""
        if not new:
            return []
        with self.db.direct_on(conn) as tx:
            return self._enqueue(tx, new, existing)

    def _enqueue(
        self,
        tx: Tx,
        new: Sequence[tuple[NewJob, str]],
        existing: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """:meth:`enqueue` on the driver's cursor: a multi-row INSERT per chunk
        on PostgreSQL, one ``executemany`` on SQLite (values made by
        :mod:`~stockade.store.jobinsert`). Through Core, 2,000 jobs took 90 ms
        on PostgreSQL (a statement per row) and 50 on SQLite.

        Jobs with keys or dependencies go through :mod:`~stockade.store.gates`
        in the same transaction; a duplicate of a unique key is not inserted,
        and ``existing`` gets its id mapped to the live job's."""
        gated = any(job.gated or job.unique_key is not None for job, _ in new)
        if gated:
            for job, _ in new:
                if job.gated and job.delay > 0:
                    raise UsageError("a delay cannot be combined with a concurrency key or --after")
            new, found, locked = gates.prepare(tx, new)
            if existing is not None:
                existing.update(found)
            if not new:
                gates.release(tx, locked)
                return []
        ((now,),) = tx.rows(_NOW)
        # In the order given, and after the ones this store submitted before.
        rows = job_rows(new, now, self._next_created)
        self._next_created = rows[-1]["created_at"] + 1e-6
        if tx.dialect == "sqlite":  # the driver's values built directly (see jobinsert)
            write_jobs(tx.cursor, rows, now)
        else:
            tx.many(_INSERT_JOB, [tuple(row[c] for c in JOB_COLUMNS) for row in rows])
            tx.many(_INSERT_QUEUED, [(jid, "queued", now) for _, jid in new])
        if gated:
            gates.admit(tx, [(job, jid) for job, jid in new if job.gated], locked)
        tx.notify(JOBS_CHANNEL)
        return rows

    # -- claim and lease ---------------------------------------------------

    def claim(
        self,
        worker_id: str,
        limit: int,
        lease: float,
        offers: Offer | Collection[str] | None = None,
    ) -> list[Claim]:
        """Claim up to ``limit`` runnable jobs (priority, then age) for ``worker_id``,
        among those ``offers`` serves: an :class:`~stockade.store.routing.Offer`
        (queues, labels, sandboxes), or the sandbox backends alone, or ``None``:
        every job (see :mod:`~stockade.store.routing`).

        One transaction of three statements whatever ``limit`` is: the claim
        ``UPDATE … RETURNING`` (which also returns each job's saved state),
        one multi-row INSERT of the attempt rows and one of the ``started``
        events.
        """
        if limit < 1:
            return []
        with self.db.direct() as tx:
            events: list[tuple[Any, ...]] = []
            claims = self._claim(tx, worker_id, limit, lease, offers, events)
            if events:
                tx.many(_INSERT_EVENT, events)
        return claims

    def _claim(
        self,
        tx: Tx,
        worker_id: str,
        limit: int,
        lease: float,
        offers: Offer | Collection[str] | None,
        events: list[tuple[Any, ...]],
    ) -> list[Claim]:
        """Claim, insert the attempt rows; the ``started`` events (rows of
        ``_INSERT_EVENT``) go to ``events``."""
        started, offer = {"worker": worker_id}, Offer.of(offers)
        shape, routing = queue_shape(offer), claim_args(offer)
        if tx.dialect == "postgresql":  # attempts and events in the claim's statement
            if events:  # the events due so far first: a job's events keep their order
                tx.many(_INSERT_EVENT, events)
                events.clear()
            tx.execute(_CLAIM_PLANNING)
            claims = _in_claim_order(
                tx.rows(_CLAIM_AND_START[shape], (limit, worker_id, lease, started, *routing))
            )
        else:
            claims = _in_claim_order(tx.rows(_CLAIM[shape], (limit, worker_id, lease, *routing)))
            if claims:
                attempts = [(c.job_id, c.run, worker_id, c.started_at) for c in claims]
                tx.many(_INSERT_ATTEMPT, attempts)
                events.extend((c.job_id, "started", c.run, started, c.started_at) for c in claims)
        return claims

    def claim_plan(
        self, offers: Offer | Collection[str] | None = None, limit: int = 20
    ) -> list[str]:
        """How the database would run a claim for ``offers`` now, one line per
        step (SQLite's ``EXPLAIN QUERY PLAN`` details; PostgreSQL's plan nodes
        as ``Node Type [using index] [on relation]``): for tests, benchmarks
        and whoever wonders whether a claim walks its index. Claims nothing."""
        offer = Offer.of(offers)
        shape, routing = queue_shape(offer), claim_args(offer)
        with self.db.direct() as tx:
            if tx.dialect == "sqlite":
                compiled = _CLAIM[shape].on("sqlite")
                args = compiled.params((limit, "explain", 0.0, *routing))
                rows = tx.cursor.execute("EXPLAIN QUERY PLAN " + compiled.sql, args).fetchall()
                return [str(row[-1]) for row in rows]
            tx.execute(_CLAIM_PLANNING)
            compiled = _CLAIM_AND_START[shape].on("postgresql")
            args = compiled.params((limit, "explain", 0.0, {}, *routing))
            tx.cursor.execute("EXPLAIN (FORMAT JSON) " + compiled.sql, args)
            (plan,) = tx.cursor.fetchone()
        document = json.loads(plan) if isinstance(plan, str) else plan
        return list(_plan_lines(document[0]["Plan"]))

    def renew(
        self, worker_id: str, lease: float, job_ids: Sequence[str] | None = None
    ) -> dict[str, tuple[int, bool]]:
        """Extend the leases ``worker_id`` holds; ``{job: (run, cancel_requested)}``.

        A job missing from the answer is no longer this worker's (its lease
        expired and another worker recovered it): stop running it.
        ``job_ids``, when given, limits the renewal to the jobs the worker
        knows it runs: a job the store lists as the worker's but the worker
        lost track of (a claim whose answer never came back) then keeps no
        lease alive and is recovered when it expires, instead of staying
        ``running`` for as long as the worker lives.
        """
        jobs = t.jobs
        where = [jobs.c.worker_id == worker_id, jobs.c.state == R.value]
        if job_ids is not None:
            if not job_ids:
                return {}
            where.append(jobs.c.id.in_(list(job_ids)))
        stmt = (
            sa.update(jobs)
            .where(*where)
            .values(lease_expires=epoch_now() + lease)
            .returning(jobs.c.id, jobs.c.runs, jobs.c.cancel_requested)
        )
        with self.db.transaction() as conn:
            return {jid: (run, bool(cancel)) for jid, run, cancel in conn.execute(stmt)}

    def cancel_requests(self, worker_id: str) -> list[tuple[str, int, bool]]:
        """``(job, run, forced)`` of this worker's running jobs that were asked
        to stop; ``forced``: to be killed at once, without their grace.

        A worker asks at every housekeeping tick while it runs jobs, so this
        runs on the driver's cursor like the record-and-claim."""
        with self.db.direct(read=True) as tx:
            return [
                (jid, run, bool(forced))
                for jid, run, forced in tx.rows(_CANCEL_REQUESTS, (worker_id,))
            ]

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

        Each end is fenced on its own; a stale one writes nothing and gets
        ``None``. The batch costs a fixed handful of statements, not a few
        per end: one ``SELECT … FOR UPDATE`` locks the jobs still running
        with the ends' attempt numbers (and reads their cancel flags), then
        one executemany per kind of write records every end that passed.
        """
        return self.finish_and_claim(ends, "", 0, 0.0)[0]

    def finish_and_claim(
        self,
        ends: Sequence[tuple[Claim, Result]],
        worker_id: str,
        limit: int,
        lease: float,
        offers: Offer | Collection[str] | None = None,
    ) -> tuple[list[JobState | None], list[Claim]]:
        """:meth:`finish_many`, then :meth:`claim` up to ``limit`` jobs for
        ``worker_id``, in one transaction: a busy worker records its ends and
        claims their successors with one commit (claim-ahead)."""
        if not ends and limit < 1:
            return [], []
        with self.db.direct() as tx:
            states: list[JobState | None] = []
            events: list[tuple[Any, ...]] = []
            if ends:
                ids = list({c.job_id: None for c, _ in ends})
                current: dict[str, tuple[int, bool]] = {}
                gated: dict[str, tuple[str | None, bool]] = {}
                now: float | None = None  # the database's clock, read under the lock
                for jid, run, cancel, clock, key, followers in tx.rows(
                    _LOCK_RUNNING[tx.dialect], (ids,)
                ):
                    current[jid], now = (run, bool(cancel)), clock
                    if key is not None or followers:
                        gated[jid] = (key, bool(followers))
                states = self._finish_batch(tx, ends, current, now, events)
                if gated:  # their slots and the jobs waiting on them
                    gates.settle(
                        tx,
                        [
                            (c.job_id, *gated[c.job_id])
                            for (c, _), state in zip(ends, states, strict=True)
                            if state is not None and state is not Q and c.job_id in gated
                        ],
                    )
            claims = self._claim(tx, worker_id, limit, lease, offers, events) if limit > 0 else []
            if events:
                tx.many(_INSERT_EVENT, events)
        return states, claims

    def _finish_batch(
        self,
        tx: Tx,
        ends: Sequence[tuple[Claim, Result]],
        current: dict[str, tuple[int, bool]],
        now: float | None,
        events: list[tuple[Any, ...]],
    ) -> list[JobState | None]:
        """Record ``ends`` whose job is locked and still on their attempt
        (``current``); their ``finished`` events (at ``now``, the database's
        clock) are added to ``events`` for the caller to insert."""
        states: list[JobState | None] = []
        batch = _EndBatch()
        for claim, result in ends:
            fence = current.pop(claim.job_id, None)  # popped: a job is recorded once
            if fence is None or fence[0] != claim.run:
                states.append(None)
                continue
            step = next_step(
                result.outcome, attempts=claim.attempts, max_attempts=claim.max_attempts,
                on_timeout=claim.on_timeout,
                cancel_requested=fence[1] and result.outcome is not Outcome.SUCCEEDED,
            )  # fmt: skip
            check(R, step.state)
            delay = None
            if step.state is Q:
                delay = backoff_delay(
                    step.retry, initial=claim.backoff_initial,
                    multiplier=claim.backoff_multiplier, cap=claim.backoff_max, rand=self.rand(),
                )  # fmt: skip
            batch.add(claim, result, step.state, delay)
            data = {"outcome": result.outcome.value, "state": step.state.value}
            events.append((claim.job_id, "finished", claim.run, data, now))
            states.append(step.state)
            if "notify" in claim.spec and step.state is not Q:
                job = _ended(claim, result, step.state)
                batch.notes += end_rows(claim.spec, job, claim.run, now or 0.0)
        batch.write(tx)
        if batch.notes:  # in the end's own transaction: committed with it or not at all
            tx.many(_INSERT_NOTIFICATION, batch.notes)
        for job_id, run, saved in batch.saves:
            if tx.execute(_UPDATE_SAVED, (job_id, run, saved)) == 0:
                tx.execute(_INSERT_SAVED, (job_id, run, saved))
        if batch.retries:
            tx.notify(JOBS_CHANNEL)
        ended = [claim.job_id for (claim, _), state in zip(ends, states, strict=True) if state]
        if ended:  # a log stream of the job ends with its final state
            tx.notify(LOGS_CHANNEL, logs_payload(ended))
        return states

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
            else:  # ended: its notifications, its slot and the jobs waiting on it
                queue_ended(conn, [claim.job_id])
                with self.db.direct_on(conn) as tx:
                    gates.settle_ids(tx, [claim.job_id])
            return target

    def recover_expired(self, limit: int = 100) -> list[tuple[str, JobState]]:
        """Mark attempts whose lease expired ``lost``; retry or fail their jobs.

        Safe to run from every worker at once: candidates are locked with
        ``SKIP LOCKED``, and each move is fenced like any other.
        """
        jobs = t.jobs
        return self._recover(jobs.c.lease_expires < epoch_now(), limit, Reason.LEASE_EXPIRED)

    def recover_worker(
        self, worker_id: str, keep: Collection[str] = ()
    ) -> list[tuple[str, JobState]]:
        """Treat every job ``worker_id`` holds as lost (that worker restarted),
        but those in ``keep`` (reattached: they run on)."""
        where = t.jobs.c.worker_id == worker_id
        if keep:
            where = sa.and_(where, t.jobs.c.id.not_in(list(keep)))
        return self._recover(where, 10_000, Reason.WORKER_RESTARTED)

    def held(self, worker_id: str) -> list[Claim]:
        """The claims of the attempts ``worker_id`` holds (``running``): what a
        restarted worker of that name may reattach to."""
        jobs = t.jobs
        saved = (
            sa.select(t.saved_state.c.data)
            .where(t.saved_state.c.job_id == jobs.c.id)
            .correlate(jobs)
            .scalar_subquery()
        )
        query = sa.select(*[jobs.c[name] for name in Claim.COLUMNS], saved).where(
            jobs.c.worker_id == worker_id, jobs.c.state == R.value
        )
        with self.db.transaction() as conn:
            return [Claim.from_values(tuple(row)) for row in conn.execute(query)]

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
            ended = [jid for jid, state in moved if state is not Q]
            if ended:  # their notifications, their slots and the jobs waiting on them
                queue_ended(conn, ended)
                with self.db.direct_on(conn) as tx:
                    gates.settle_ids(tx, ended)
        return moved


def _ended(claim: Claim, result: Result, state: JobState) -> dict[str, Any]:
    """The summary fields of a job ``result`` just ended (for its notifications)."""
    return {
        "id": claim.job_id, "task": claim.task, "state": state.value,
        "outcome": result.outcome.value, "reason": result.reason, "error": result.error,
        "exit_code": result.exit_code, "signal": result.signal, "attempts": claim.attempts,
        "max_attempts": claim.max_attempts,
    }  # fmt: skip


class _EndBatch:
    """The rows :meth:`JobManager.finish_many` writes, one executemany per
    statement; each row a tuple in its statement's ``args`` order."""

    def __init__(self) -> None:
        self.ends: list[tuple[Any, ...]] = []
        self.retries: list[tuple[Any, ...]] = []
        self.attempts: list[tuple[Any, ...]] = []
        self.outputs: list[tuple[Any, ...]] = []
        self.saves: list[tuple[str, int, dict[str, Any]]] = []
        #: Rows of the outbox (:mod:`~stockade.store.outbox`) the ends queue.
        self.notes: list[tuple[Any, ...]] = []

    def add(self, claim: Claim, result: Result, state: JobState, delay: float | None) -> None:
        """One fenced end moving its job to ``state`` (``delay``: a retry's backoff)."""
        summary = (result.outcome.value, result.reason, result.error, result.exit_code,
                   result.signal)  # fmt: skip
        if delay is None:
            self.ends.append((claim.job_id, claim.run, state.value, *summary))
        else:
            self.retries.append((claim.job_id, claim.run, state.value, *summary, delay))
        record = result_json(result)
        self.attempts.append(
            (claim.job_id, claim.run, record.get("duration"), record, *usage_columns(record),
             *summary)
        )  # fmt: skip
        if state is JobState.SUCCEEDED:
            self.outputs.append((claim.job_id, claim.run, result.outputs))
        if result.state != claim.state:
            self.saves.append((claim.job_id, claim.run, result.state))

    def write(self, tx: Tx) -> None:
        """Move the jobs, end their attempts, store outputs."""
        for stmt, rows in ((_END, self.ends), (_RETRY, self.retries)):
            if rows:
                matched = tx.many(stmt, rows)
                if tx.sane_multi_rowcount and matched != len(rows):
                    # Cannot happen: the rows are locked and were checked by the caller.
                    raise StoreError(f"recording {len(rows)} attempt(s) matched {matched} job(s)")
        for stmt, rows in ((_END_ATTEMPT, self.attempts), (_INSERT_OUTPUT, self.outputs)):
            if rows:
                tx.many(stmt, rows)
