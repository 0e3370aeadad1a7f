"""Recording a pipeline run on SQLite straight on ``sqlite3``, without SQLAlchemy.

``stockade run`` records its run as it goes (:class:`~stockade.engine.runs.RunRecorder`).
Importing SQLAlchemy and building its engine cost a one-step pipeline more
than running it; on SQLite the run's writes are a handful of plain
statements, so :func:`open_run_store` serves them here, behind the same
``runs`` and ``journal`` methods the recorder calls on a
:class:`~stockade.store.Store` (the :class:`RunRecording` protocol).

Every row and every change is built by :mod:`~stockade.store.runrows`, as
:class:`~stockade.store.runs.RunStore` builds them; only the statements
are written here, from those rows' keys. The connection is set up as
:class:`~stockade.store.database.Database` sets up SQLite's (WAL,
``synchronous=NORMAL``, a busy timeout, foreign keys, ``BEGIN IMMEDIATE``
for writes) and driver errors are mapped as it maps them. The full store
is used whenever this path is not sure: a store that is not an existing
SQLite file of this stockade's schema (:data:`~stockade.store.revision.HEAD`),
or ``$STOCKADE_LITE=0``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from stockade.errors import RunNotFound, SchemaError, StoreError, StoreUnavailable
from stockade.store.runrows import LIVE, RunBatch, batch_rows, run_changes, run_row
from stockade.store.sqliteopen import connect_existing
from stockade.store.sqlitewal import enable_wal
from stockade.store.states import RunState

if TYPE_CHECKING:
    from stockade.store.journal import Journal
    from stockade.store.runs import RunStore

__all__ = [
    "JSON_COLUMNS",
    "NULL_JSON",
    "LiteJournal",
    "LiteRunStore",
    "RunRecording",
    "open_run_store",
]

#: The database's clock, as :class:`~stockade.store.schema.epoch_now` renders on SQLite.
EPOCH_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
#: Per table written here, its JSON columns (Core's ``JSON`` writes ``None`` as ``null``,
#: except in those of :data:`NULL_JSON`, which it writes as SQL ``NULL``).
JSON_COLUMNS = {
    "runs": ("options", "steps", "tests", "warnings"), "jobs": ("input", "spec", "labels"),
    "attempts": ("result",), "outputs": ("data",), "events": ("data",),
}  # fmt: skip
#: The parameters of the fenced job move, in the statement's order.
_MOVED = (
    "b_state", "b_attempts", "b_attempts", "b_finished", "b_outcome", "b_reason", "b_error",
    "b_exit_code", "b_id", "b_from",
)  # fmt: skip
NULL_JSON = ("labels",)
_CANCEL = "SELECT cancel_requested FROM runs WHERE id = ?"
_PRAGMAS = ("synchronous=NORMAL", "busy_timeout=30000", "foreign_keys=ON")


class Named(Protocol):
    @property
    def name(self) -> str: ...


class RunRecording(Protocol):
    """What a run's recorder holds: a :class:`~stockade.store.Store` is one."""

    @property
    def db(self) -> Named: ...
    @property
    def runs(self) -> RunStore | LiteRunStore: ...
    @property
    def journal(self) -> Journal | LiteJournal: ...

    def close(self) -> None: ...


def _encode(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with its JSON columns as text, as Core's SQLite dialect writes them."""
    encoded = dict(row)
    for name in JSON_COLUMNS.get(table, ()):
        if name in encoded and not (encoded[name] is None and name in NULL_JSON):
            encoded[name] = json.dumps(encoded[name])
    return encoded


def _insert(cursor: sqlite3.Cursor, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    names = list(rows[0])
    sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    encoded = [_encode(table, row) for row in rows]
    cursor.executemany(sql, [[row[n] for n in names] for row in encoded])


def _first_line(text: str) -> str:
    return next(
        (line.strip() for line in text.strip().splitlines() if line.strip()), "unknown error"
    )


class LiteDb:
    """One SQLite connection, set up and mapped as :class:`~stockade.store.database.Database`."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self.conn = conn
        self.name = name

    @contextlib.contextmanager
    def transaction(self, *, read: bool = False) -> Iterator[sqlite3.Cursor]:
        """A write transaction (``read``: a read one), committed when the block
        ends, rolled back on error; driver errors become :class:`StoreError`."""
        try:
            cursor = self.conn.cursor()
            try:
                cursor.execute("BEGIN" if read else "BEGIN IMMEDIATE")
                try:
                    yield cursor
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self.conn.rollback()
                    raise
                cursor.execute("COMMIT")
            finally:
                cursor.close()
        except sqlite3.Error as error:
            with contextlib.suppress(sqlite3.Error):
                self.conn.rollback()
            raise self.map_error(error) from error

    def map_error(self, error: sqlite3.Error) -> StoreError:
        """The :class:`StoreError` a driver error means (as ``Database.map_error``)."""
        detail = _first_line(str(error))
        if "no such table" in detail or "no such column" in detail:
            return SchemaError(
                f"the database {self.name} has no stockade schema or an old one ({detail}): "
                "run `stockade db upgrade`"
            )
        if isinstance(error, sqlite3.OperationalError | sqlite3.InterfaceError):
            return StoreUnavailable(f"cannot use the database {self.name}: {detail}")
        return StoreError(f"database error on {self.name}: {detail}")

    def dispose(self) -> None:
        self.conn.close()


class LiteRunStore:
    """:class:`~stockade.store.runs.RunStore`'s run writes on a :class:`LiteDb`."""

    def __init__(self, db: LiteDb) -> None:
        self.db = db

    def _now(self, cursor: sqlite3.Cursor) -> float:
        return float(cursor.execute(f"SELECT {EPOCH_NOW}").fetchone()[0])

    def create(
        self,
        run_id: str,
        pipeline: str,
        *,
        options: dict[str, Any],
        steps: dict[str, Any],
        source_run: str | None = None,
        state: RunState = RunState.QUEUED,
    ) -> None:
        """Record a new run (see :meth:`~stockade.store.runs.RunStore.create`)."""
        with self.db.transaction() as cursor:
            now = self._now(cursor)
            _insert(
                cursor, "runs", [run_row(run_id, pipeline, options, steps, source_run, state, now)]
            )

    def record(self, batch: RunBatch) -> bool:
        """Write ``batch``; whether the run was asked to stop (its cancel flag)."""
        with self.db.transaction() as cursor:
            row = cursor.execute(
                f"SELECT state, cancel_requested, {EPOCH_NOW} FROM runs WHERE id = ?",
                [batch.run_id],
            ).fetchone()
            if row is None:
                raise RunNotFound(batch.run_id)
            stored, cancel, now = RunState(row[0]), bool(row[1]), float(row[2])
            self._jobs(cursor, batch, now)
            _insert(cursor, "log_chunks", batch.logs)
            self._run(cursor, batch, stored, now)
        return cancel

    def _jobs(self, cursor: sqlite3.Cursor, batch: RunBatch, now: float) -> None:
        rows = batch_rows(batch, now)
        _insert(cursor, "jobs", rows.births)
        if rows.moves:
            cursor.executemany(
                "UPDATE jobs SET state = ?, attempts = ?, runs = ?, finished_at = ?,"
                f" updated_at = {EPOCH_NOW}, outcome = ?, reason = ?, error = ?, exit_code = ?"
                " WHERE jobs.id = ? AND jobs.state = ?",
                [[m[k] for k in _MOVED] for m in rows.moves],
            )
            if cursor.rowcount != len(rows.moves):
                raise StoreError(
                    f"recording {len(rows.moves)} job(s) of a run matched {cursor.rowcount}"
                )
        _insert(cursor, "attempts", rows.started)
        ended = ("finished_at", "outcome", "reason", "exit_code", "error", "duration", "result",
                 "cpu_seconds", "memory_bytes")  # fmt: skip
        if rows.ended:
            cursor.executemany(
                f"UPDATE attempts SET {', '.join(f'{k} = ?' for k in ended)}"
                " WHERE attempts.job_id = ? AND attempts.attempt = ?",
                [
                    [
                        *(_encode("attempts", {k: e[f"b_{k}"] for k in ended}).values()),
                        e["b_id"],
                        e["b_attempt"],
                    ]
                    for e in rows.ended
                ],
            )
        _insert(cursor, "outputs", rows.outputs)
        _insert(cursor, "events", rows.events)
        _insert(cursor, "run_tests", rows.tests)

    def _run(self, cursor: sqlite3.Cursor, batch: RunBatch, stored: RunState, now: float) -> None:
        values = _encode("runs", run_changes(batch, stored, now))
        if not values:
            return
        sets = ", ".join(f"{name} = ?" for name in ["updated_at", *values])
        cursor.execute(
            f"UPDATE runs SET {sets} WHERE runs.id = ? AND runs.state = ?",
            [now, *values.values(), batch.run_id, stored.value],
        )
        if cursor.rowcount != 1:  # cannot happen: the row is locked
            raise StoreError(f"run {batch.run_id} changed while it was being recorded")

    def heartbeat(self, run_id: str) -> bool:
        """Stamp the live run's ``updated_at``; whether it was asked to stop."""
        with self.db.transaction() as cursor:
            cursor.execute(
                f"UPDATE runs SET updated_at = {EPOCH_NOW}"
                " WHERE runs.id = ? AND runs.state IN (?, ?)",
                [run_id, *LIVE],
            )
            row = cursor.execute(
                "SELECT cancel_requested FROM runs WHERE id = ?", [run_id]
            ).fetchone()
        return bool(row and row[0])

    def cancel_requested(self, run_id: str) -> bool:
        """Whether someone asked the run to stop."""
        with self.db.transaction(read=True) as cursor:
            row = cursor.execute(
                "SELECT cancel_requested FROM runs WHERE id = ?", [run_id]
            ).fetchone()
        return bool(row and row[0])


class LiteJournal:
    """:meth:`~stockade.store.journal.Journal.record_progress` on a :class:`LiteDb`."""

    def __init__(self, db: LiteDb) -> None:
        self.db = db

    def record_progress(self, job_id: str, attempt: int, data: Mapping[str, Any]) -> None:
        """Set the ``progress`` event of a job's attempt (one row per attempt)."""
        text = json.dumps(dict(data))
        with self.db.transaction() as cursor:
            cursor.execute(
                f"UPDATE events SET data = ?, time = {EPOCH_NOW}"
                " WHERE events.job_id = ? AND events.attempt = ? AND events.kind = 'progress'",
                [text, job_id, attempt],
            )
            if cursor.rowcount == 0:
                cursor.execute(
                    "INSERT INTO events (job_id, kind, attempt, data, time)"
                    f" VALUES (?, 'progress', ?, ?, {EPOCH_NOW})",
                    [job_id, attempt, text],
                )


class LiteRecording:
    """A :class:`RunRecording` on one SQLite connection."""

    def __init__(self, db: LiteDb) -> None:
        self.db = db
        self.runs = LiteRunStore(db)
        self.journal = LiteJournal(db)

    def close(self) -> None:
        self.db.dispose()


def open_run_store(
    database_url: str | None = None, data_dir: str | os.PathLike[str] | None = None
) -> RunRecording:
    """Where a run is recorded: on the driver alone for an existing SQLite store
    of this stockade's schema (unless ``$STOCKADE_LITE`` is ``0``), else the
    full store (which creates the schema or says why it cannot)."""
    found = connect_existing(database_url, data_dir, any_thread=True)
    if found is not None:
        path, conn = found
        try:
            enable_wal(conn, 30.0)  # as busy_timeout below
            for pragma in _PRAGMAS:
                conn.execute(f"PRAGMA {pragma}")
            return LiteRecording(LiteDb(conn, f"sqlite:///{path}"))
        except sqlite3.Error:
            conn.close()
    from stockade.store.store import open_store

    return open_store(database_url, data_dir)
