"""The CLI's reads and submits on a SQLite store, straight on ``sqlite3``, without SQLAlchemy.

`stockade jobs`, `show`, `logs` and `submit` each run one process for a few
small reads or one insert; importing SQLAlchemy and Alembic and building
the engine cost them about thirty times what Python itself takes to start.
On SQLite these are simple, so :func:`open_reader` and :func:`open_writer`
serve them here, on the driver alone, behind the same ``queries`` and
``jobs`` methods as :class:`~stockade.store.Store` (the :class:`Reader` and
:class:`Writer` protocols), and fall back to the full store whenever this
path is not sure:

* the options name something other than a SQLite file that exists
  (PostgreSQL, an unusual URL, a store not created yet);
* the file's schema is not this stockade's (:data:`~stockade.store.revision.HEAD`):
  the full store creates it or says why it cannot;
* a prefix that names no job or more than one, and any driver error: the
  same call is made on the full store, which reports it its own way;
* a submit of jobs with a unique or concurrency key or dependencies
  (:class:`LiteJobs`): the full store's gates decide those.

The statements are SQLAlchemy Core's in :mod:`~stockade.store.queries`,
compiled for SQLite: a test compiles each builder there for every shape of
arguments and checks it gives this module's text and parameters. JSON
columns are parsed as Core's SQLite dialect parses them.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from stockade.store.ids import new_job_id
from stockade.store.jobinsert import job_rows, write_jobs
from stockade.store.records import (
    LIVE_WITHIN,
    AttemptRecord,
    JobRecord,
    LogChunk,
    NewJob,
    mark_waiting,
    worker_offer,
)
from stockade.store.routing import Offer
from stockade.store.sqliteopen import connect_existing

__all__ = [
    "LiteJobs", "LiteQueries", "LiteStore", "ReadQueries", "Reader", "WriteJobs", "Writer",
    "attempts_of", "chunks_of", "connect_existing", "job_by_id", "jobs_listing", "live_offers",
    "now_query", "open_reader", "open_writer", "outputs_of",
]  # fmt: skip

T = TypeVar("T")
#: The database's clock, as :class:`~stockade.store.schema.epoch_now` renders on SQLite.
_EPOCH_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
#: Column names of the tables read here, in the schema's order.
_JOBS = (
    "id", "task", "state", "priority", "input", "spec", "max_attempts", "attempts", "runs",
    "transient", "backoff_initial", "backoff_multiplier", "backoff_max", "on_timeout",
    "run_after", "created_at", "updated_at", "started_at", "finished_at", "worker_id",
    "lease_expires", "cancel_requested", "cancel_forced", "outcome", "exit_code", "signal",
    "reason", "error", "run_id", "step", "item", "sandbox_need", "concurrency_key",
    "concurrency_limit", "unique_key", "unique_while", "after_ids", "after_any", "deps_pending",
    "followers", "queue", "labels",
)  # fmt: skip
_ATTEMPTS = (
    "job_id", "attempt", "worker_id", "started_at", "finished_at", "outcome", "reason",
    "exit_code", "signal", "error", "duration", "result", "cpu_seconds", "memory_bytes",
)  # fmt: skip
_CHUNKS = ("id", "job_id", "attempt", "stream", "text", "time")
#: Per table, the JSON columns (text in SQLite, parsed on the way out).
_JSON = {
    "jobs": ("input", "spec", "labels"), "attempts": ("result",), "outputs": ("data",),
    "notifications": ("history", "spec"),
}  # fmt: skip

Query = tuple[str, list[Any]]


def _select(table: str, columns: Sequence[str]) -> str:
    return f"SELECT {', '.join(f'{table}.{c}' for c in columns)} FROM {table}"


def _limit(sql: str, params: list[Any], limit: int | None) -> Query:
    return (sql, params) if limit is None else (f"{sql} LIMIT ? OFFSET ?", [*params, limit, 0])


def jobs_listing(
    states: Iterable[str],
    task: str | None,
    run_id: str | None,
    limit: int | None,
    oldest_first: bool = False,
) -> Query:
    """:func:`stockade.store.queries.jobs_listing` on SQLite."""
    where, params = [], list(states)
    if params:
        where.append(f"jobs.state IN ({', '.join('?' * len(params))})")
    if task:
        where.append("jobs.task = ?")
        params.append(task)
    if run_id:
        where.append("jobs.run_id = ?")
        params.append(run_id)
    sql = _select("jobs", _JOBS)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY jobs.created_at{'' if oldest_first else ' DESC'}, jobs.id"
    return _limit(sql, params, limit)


def job_by_id(job_id: str) -> Query:
    return f"{_select('jobs', _JOBS)} WHERE jobs.id = ?", [job_id]


def attempts_of(job_id: str) -> Query:
    sql = f"{_select('attempts', _ATTEMPTS)} WHERE attempts.job_id = ?"
    return f"{sql} ORDER BY attempts.attempt", [job_id]


def outputs_of(job_id: str) -> Query:
    return "SELECT outputs.data FROM outputs WHERE outputs.job_id = ?", [job_id]


def chunks_of(job_id: str, after: int, attempt: int | None, limit: int) -> Query:
    sql = f"{_select('log_chunks', _CHUNKS)} WHERE log_chunks.job_id = ? AND log_chunks.id > ?"
    params: list[Any] = [job_id, after]
    if attempt is not None:
        sql += " AND log_chunks.attempt = ?"
        params.append(attempt)
    return _limit(f"{sql} ORDER BY log_chunks.id", params, limit)


def live_offers() -> Query:
    sql = (
        "SELECT workers.sandboxes, workers.queues, workers.labels FROM workers"
        " WHERE workers.stopped_at IS NULL"
        f" AND workers.last_seen >= {_EPOCH_NOW} - ?"
    )
    return sql, [LIVE_WITHIN]


def now_query() -> Query:
    return f"SELECT {_EPOCH_NOW} AS anon_1", []


def _exact(ref: str) -> Query:
    return "SELECT jobs.id FROM jobs WHERE jobs.id = ?", [ref]


def _unique_prefix(ref: str) -> Query:
    """The ids starting with ``ref`` (only called with an alphanumeric ``ref``:
    nothing to escape), at most two."""
    sql = "SELECT jobs.id FROM jobs WHERE (jobs.id LIKE ? || '%' ESCAPE '/')"
    return _limit(sql, [ref], 2)


class _Unsure(Exception):
    """This path cannot answer; the full store must."""


class ReadQueries(Protocol):
    """The reads the CLI's read commands make (:class:`~stockade.store.Queries` has them)."""

    def resolve(self, ref: str) -> str: ...
    def job(self, ref: str) -> JobRecord: ...
    def jobs(
        self,
        *,
        states: Iterable[str] = (),
        task: str | None = None,
        limit: int | None = 100,
        oldest_first: bool = False,
        run_id: str | None = None,
    ) -> list[JobRecord]: ...
    def attempts(self, job_id: str) -> list[AttemptRecord]: ...
    def notifications(self, job_id: str) -> list[dict[str, Any]]: ...
    def outputs(self, job_id: str) -> dict[str, Any] | None: ...
    def logs(
        self, job_id: str, *, after: int = 0, attempt: int | None = None, limit: int = 1000
    ) -> list[LogChunk]: ...
    def now(self) -> float: ...


class Reader(Protocol):
    """What a read command holds: ``queries`` and ``close()`` (a
    :class:`~stockade.store.Store` is one)."""

    @property
    def queries(self) -> ReadQueries: ...

    def close(self) -> None: ...


class LiteQueries:
    """:class:`ReadQueries` on a ``sqlite3`` connection; what it cannot answer
    goes to ``full()``, the full store's queries (opened on first need)."""

    def __init__(self, conn: sqlite3.Connection, full: Callable[[], ReadQueries]) -> None:
        self._conn = conn
        self._full = full

    def _read(self, fast: Callable[[], T], slow: Callable[[ReadQueries], T]) -> T:
        """``fast()`` in one read transaction; ``slow(full store)`` if it cannot."""
        try:
            self._conn.execute("BEGIN")
            try:
                return fast()
            finally:
                self._conn.execute("COMMIT")
        except (sqlite3.Error, _Unsure):
            return slow(self._full())

    def _rows(self, query: Query, table: str = "") -> list[dict[str, Any]]:
        cursor = self._conn.execute(*query)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        for name in _JSON.get(table, ()):
            for row in rows:
                if row.get(name) is not None:
                    row[name] = json.loads(row[name])
        return rows

    def _resolve(self, ref: str) -> str:
        if self._conn.execute(*_exact(ref)).fetchone() is not None:
            return ref
        if len(ref) < 4 or not ref.isalnum():
            raise _Unsure
        found = self._conn.execute(*_unique_prefix(ref)).fetchall()
        if len(found) != 1:  # no such job, or ambiguous: the full store says so
            raise _Unsure
        return str(found[0][0])

    def _offers(self) -> list[Offer]:
        return [
            worker_offer(*(None if value is None else json.loads(value) for value in row))
            for row in self._conn.execute(*live_offers()).fetchall()
        ]

    def resolve(self, ref: str) -> str:
        return self._read(lambda: self._resolve(ref), lambda q: q.resolve(ref))

    def job(self, ref: str) -> JobRecord:
        def fast() -> JobRecord:
            (row,) = self._rows(job_by_id(self._resolve(ref)), "jobs")
            record = JobRecord.from_row(row)
            mark_waiting([record], self._offers)
            return record

        return self._read(fast, lambda q: q.job(ref))

    def jobs(
        self,
        *,
        states: Iterable[str] = (),
        task: str | None = None,
        limit: int | None = 100,
        oldest_first: bool = False,
        run_id: str | None = None,
    ) -> list[JobRecord]:
        wanted = tuple(states)

        def fast() -> list[JobRecord]:
            query = jobs_listing(wanted, task, run_id, limit, oldest_first)
            records = [JobRecord.from_row(row) for row in self._rows(query, "jobs")]
            mark_waiting(records, self._offers)
            return records

        return self._read(
            fast,
            lambda q: q.jobs(
                states=wanted, task=task, limit=limit, oldest_first=oldest_first, run_id=run_id
            ),
        )

    def attempts(self, job_id: str) -> list[AttemptRecord]:
        return self._read(
            lambda: [
                AttemptRecord.from_row(r) for r in self._rows(attempts_of(job_id), "attempts")
            ],
            lambda q: q.attempts(job_id),
        )

    def notifications(self, job_id: str) -> list[dict[str, Any]]:
        from stockade.store.outboxview import SHOWN, shown

        sql = f"SELECT {', '.join(SHOWN)} FROM notifications WHERE job_id = ? ORDER BY id"
        return self._read(
            lambda: shown(job_id, self._rows((sql, [job_id]), "notifications")),
            lambda q: q.notifications(job_id),
        )

    def outputs(self, job_id: str) -> dict[str, Any] | None:
        def fast() -> dict[str, Any] | None:
            rows = self._rows(outputs_of(job_id), "outputs")
            return dict(rows[0]["data"]) if rows else None

        return self._read(fast, lambda q: q.outputs(job_id))

    def logs(
        self, job_id: str, *, after: int = 0, attempt: int | None = None, limit: int = 1000
    ) -> list[LogChunk]:
        return self._read(
            lambda: [LogChunk(**r) for r in self._rows(chunks_of(job_id, after, attempt, limit))],
            lambda q: q.logs(job_id, after=after, attempt=attempt, limit=limit),
        )

    def now(self) -> float:
        return self._read(
            lambda: float(self._conn.execute(*now_query()).fetchone()[0]), lambda q: q.now()
        )


class WriteJobs(Protocol):
    """The submits ``stockade submit`` makes (:class:`~stockade.store.JobManager` has them)."""

    def submit(self, new: Sequence[NewJob]) -> list[str]: ...
    def place(self, new: Sequence[NewJob]) -> list[tuple[str, bool]]: ...


class Writer(Reader, Protocol):
    """A :class:`Reader` that also submits jobs (a :class:`~stockade.store.Store` is one)."""

    @property
    def jobs(self) -> WriteJobs: ...


class LiteJobs:
    """:class:`WriteJobs` on a ``sqlite3`` connection, for jobs without keys or
    dependencies: the same rows and events as the full store's enqueue
    (:mod:`~stockade.store.jobinsert`), in one ``BEGIN IMMEDIATE``
    transaction. A batch with a unique or concurrency key or ``--after``
    goes to ``full()``, the full store's manager (:mod:`~stockade.store.gates`
    decides those), and so does a batch the driver failed to write (rolled
    back: nothing of it is stored), which reports the failure its own way."""

    def __init__(self, conn: sqlite3.Connection, full: Callable[[], WriteJobs]) -> None:
        self._conn = conn
        self._full = full
        self._next_created = 0.0  # as the full store's manager keeps it

    def submit(self, new: Sequence[NewJob]) -> list[str]:
        return [jid for jid, _ in self.place(new)]

    def place(self, new: Sequence[NewJob]) -> list[tuple[str, bool]]:
        if any(job.gated or job.unique_key is not None for job in new):
            return self._full().place(new)
        ids = [job.id or new_job_id() for job in new]
        if not new:
            return []
        try:
            self._write(list(zip(new, ids, strict=True)))
        except sqlite3.Error:
            return self._full().place(new)
        return [(jid, True) for jid in ids]

    def _write(self, new: list[tuple[NewJob, str]]) -> None:
        cursor = self._conn.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                (now,) = cursor.execute(*now_query()).fetchone()
                rows = job_rows(new, now, self._next_created)
                write_jobs(cursor, rows, now)
                cursor.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.rollback()
                raise
            self._next_created = rows[-1]["created_at"] + 1e-6
        finally:
            cursor.close()


class LiteStore:
    """A :class:`Writer` on a SQLite file; the full store is opened only if needed."""

    def __init__(self, conn: sqlite3.Connection, database_url: str | None, data_dir: Any) -> None:
        self._conn = conn
        self._where = (database_url, data_dir)
        self._store: Any = None
        self.queries = LiteQueries(conn, self._full)
        self.jobs = LiteJobs(conn, self._full_jobs)

    def _open(self) -> Any:
        if self._store is None:
            from stockade.store.store import open_store

            self._store = open_store(*self._where)
        return self._store

    def _full(self) -> ReadQueries:
        queries: ReadQueries = self._open().queries
        return queries

    def _full_jobs(self) -> WriteJobs:
        jobs: WriteJobs = self._open().jobs
        return jobs

    def close(self) -> None:
        self._conn.close()
        if self._store is not None:
            self._store.close()


def open_reader(
    database_url: str | None = None, data_dir: str | os.PathLike[str] | None = None
) -> Reader:
    """A :class:`Reader` of the store the options name: on the driver alone
    for an existing SQLite store of this stockade's schema (unless
    ``$STOCKADE_LITE`` is ``0``), else the full store."""
    return open_writer(database_url, data_dir)


def open_writer(
    database_url: str | None = None, data_dir: str | os.PathLike[str] | None = None
) -> Writer:
    """A :class:`Writer` of the store the options name, as :func:`open_reader`
    chooses: a store not created yet, or at another schema revision, is the
    full store's to create or refuse (with its one-line error)."""
    found = connect_existing(database_url, data_dir)
    if found is None:
        from stockade.store.store import open_store

        return open_store(database_url, data_dir)
    return LiteStore(found[1], database_url, data_dir)
