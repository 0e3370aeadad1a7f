"""The worker's hot statements, compiled once, run straight on the driver's cursor.

A busy worker records an attempt's end and claims the next job in one
transaction per batch, on a thread that shares the GIL with the event loop
running the jobs. Executing a Core statement through a SQLAlchemy
``Connection`` costs far more Python than the driver's own work: the cache
lookup, ``_init_compiled``, parameter and result processing, the
``Connection`` and ``Transaction`` objects. So the few statements of that path
stay SQLAlchemy Core (the schema in :mod:`~stockade.store.schema` remains
the one source of truth) but are compiled here once per dialect, on first
use, and executed with the DBAPI cursor's ``execute`` / ``executemany``.
Compiling on first use rather than at import keeps every command that only
imports the job manager from paying for all of them, for both dialects (the
PostgreSQL one imports psycopg); :func:`compile_all` compiles every one, and
a test calls it so that a statement that does not compile still fails early.

Compiling keeps what Core would do at execute time: the literal parameters
a statement carries (``state = 'running'``) are baked into each slot, and
the type's bind processors (JSON serialization) and result processors
(JSON parsing on SQLite) are applied the same way. Each statement names
the parameters its caller passes, in order (:class:`Statement`), so rows
are plain tuples built by the caller, not dictionaries.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "ARRAYS",
    "DIALECTS",
    "Batch",
    "Compiled",
    "Statement",
    "Tx",
    "compile_all",
    "dialect_of",
    "insert_batch",
    "row_source",
]

#: The store kinds, each with the dialect :func:`dialect_of` makes for it.
DIALECTS = ("sqlite", "postgresql")


@functools.cache
def dialect_of(name: str) -> Dialect:
    """The dialect of store kind ``name``, with a positional parameter style so
    that a row of parameters is a tuple: ``?`` for sqlite3; PostgreSQL's own
    ``$1`` for psycopg, run on a ``RawCursor`` (:meth:`Database.direct`), which
    sends the text as it is where ``%s`` would be parsed again and again."""
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.pysqlite.dialect()
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.psycopg.dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
    raise KeyError(name)


_Processor = Callable[[Any], Any]


def _inlining(dialect: Dialect) -> Any:
    """``dialect``'s statement compiler, writing the constants a statement
    carries (``state = 'queued'``) into its SQL instead of sending them as
    parameters.

    A prepared statement is planned for any value of its parameters: with
    ``state = $1`` PostgreSQL cannot use the partial index on queued jobs
    (``ix_jobs_claim``), and its generic plan scanned and sorted every
    queued job at each claim (2 ms of the server's CPU with 1,000 queued).
    Only values of the code's own statements get here, never input, and
    only those of a type that renders literals (not JSON).
    """
    base: Any = dialect.statement_compiler

    class Inlining(base):  # type: ignore[misc]
        def visit_bindparam(self, bindparam: Any, **kw: Any) -> Any:
            if (
                not bindparam.required
                and bindparam.callable is None
                and bindparam.value is not None
                and not bindparam.expanding
                and bindparam.type.dialect_impl(self.dialect).literal_processor(self.dialect)
                is not None
            ):
                return self.render_literal_bindparam(bindparam, **kw)
            return super().visit_bindparam(bindparam, **kw)

    return Inlining


_inline = functools.cache(_inlining)


class Compiled:
    """One statement compiled for one dialect: its SQL, how to turn a tuple
    of the caller's arguments into the driver's parameters, and how to
    process the rows it returns."""

    def __init__(
        self, compiled: Any, dialect: Dialect, args: Sequence[str], columns: Sequence[Any] = ()
    ) -> None:
        self.dialect = dialect
        self.sql: str = compiled.string
        binds: dict[str, Any] = compiled.binds
        processors: dict[str, _Processor] = {}
        for name, bind in binds.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                processors[name] = proc
        order: list[str] = list(compiled.positiontup or ())
        missing = set(args) - set(order)
        if missing:
            raise ValueError(f"not parameters of the statement: {sorted(missing)}")
        self._identity = order == list(args) and not any(name in processors for name in order)
        #: Per parameter slot: (index in the caller's tuple or -1, processor, constant).
        self._slots: list[tuple[int, _Processor | None, Any]] = []
        for name in order:
            proc = processors.get(name)
            if name in args:
                self._slots.append((args.index(name), proc, None))
            elif name in binds and binds[name].required:
                raise ValueError(f"parameter {name!r} of the statement is not in args")
            else:  # a literal of the statement: processed once, here
                value = binds[name].effective_value
                self._slots.append((-1, None, proc(value) if proc is not None else value))
        self._types = [column.type.dialect_impl(dialect) for column in columns]
        #: The result columns that have a processor: (index, processor).
        self._results: list[tuple[int, _Processor]] | None = None

    def params(self, row: Sequence[Any]) -> Sequence[Any]:
        """The driver's parameters for the caller's ``row``."""
        if self._identity:
            return row
        return [
            const if i < 0 else (row[i] if proc is None else proc(row[i]))
            for i, proc, const in self._slots
        ]

    def rows(self, cursor: Any) -> list[Sequence[Any]]:
        """The rows ``cursor`` returned, through the result columns' processors."""
        fetched: list[Sequence[Any]] = cursor.fetchall()
        if self._results is None:  # the driver's column types are known only now
            description = cursor.description or ()
            self._results = [
                (i, proc)
                for i, (type_, column) in enumerate(zip(self._types, description, strict=False))
                if (proc := type_.result_processor(self.dialect, column[1])) is not None
            ]
        if not self._results:
            return fetched
        rows: list[Sequence[Any]] = []
        for row in fetched:
            values = list(row)
            for i, proc in self._results:
                values[i] = proc(values[i])
            rows.append(values)
        return rows


class Statement:
    """A Core statement compiled for each dialect of :data:`DIALECTS` it is for
    (``only``; all of them by default), on its first use there.

    ``args`` names the parameters (bind names, or column keys of an INSERT
    given ``columns``) in the order callers pass them. A list of any length
    goes in one parameter (an array, a JSON list), never an expanding ``IN``:
    that would compile a statement for every length.
    """

    def __init__(
        self,
        stmt: Any,
        args: Sequence[str],
        *,
        columns: Sequence[str] | None = None,
        many: bool = False,
        only: Sequence[str] = DIALECTS,
    ) -> None:
        self.dialects = tuple(only)
        self._stmt, self._args, self._columns, self._many = stmt, tuple(args), columns, many
        self._compiled: dict[str, Compiled] = {}
        _made.append(self)

    def on(self, name: str) -> Compiled:
        """The statement compiled for dialect ``name`` (KeyError: not one it is for)."""
        compiled = self._compiled.get(name)
        if compiled is None:  # two threads may both compile it: the same result
            if name not in self.dialects:
                raise KeyError(name)
            made = dialect_of(name)
            stmt = _inline(made)(
                made, self._stmt, column_keys=self._columns, for_executemany=self._many
            )
            compiled = self._compiled[name] = Compiled(
                stmt, made, self._args, _result_columns(self._stmt)
            )
        return compiled


#: Every :class:`Statement` made so far, for :func:`compile_all`.
_made: list[Statement] = []


def compile_all() -> int:
    """Compile every statement made so far for each of its dialects (and the
    batches' array forms); how many compilations that was. Raises what a
    statement that does not compile raises."""
    for batch in list(_batches):
        batch.arrays  # noqa: B018 - building it makes its statements
    count = 0
    for stmt in list(_made):
        for name in stmt.dialects:
            stmt.on(name)
            count += 1
    return count


def _result_columns(stmt: Any) -> Sequence[Any]:
    """The columns ``stmt`` returns, in order (a SELECT's, or an INSERT's or
    UPDATE's RETURNING clause; none for a statement that returns no rows)."""
    if isinstance(stmt, sa.Select):
        return list(stmt.selected_columns)
    if isinstance(stmt, sa.UpdateBase):
        return list(stmt.exported_columns)
    return []


#: ``build(ARRAYS)``: a :class:`Batch` statement that takes one array per column.
ARRAYS = -1


def row_source(params: Sequence[tuple[str, Any]], rows: int) -> dict[str, sa.ColumnElement[Any]]:
    """Where the per-row values of a :class:`Batch` statement come from, by name:
    bind parameters ``params`` (``(name, type)``) for one row (``rows`` 0),
    or, for ``rows`` :data:`ARRAYS` (PostgreSQL), the columns of
    ``unnest($1::type[], $2::type[], …)``: one array parameter per column,
    so that one statement writes any number of rows."""
    if rows == 0:
        return {name: sa.bindparam(name, type_=type_) for name, type_ in params}
    if rows != ARRAYS:
        raise ValueError(f"rows must be 0 or ARRAYS, not {rows}")
    from sqlalchemy.dialects.postgresql import ARRAY

    arrays = [sa.bindparam(name, type_=ARRAY(type_)) for name, type_ in params]
    columns = [sa.column(name, type_) for name, type_ in params]
    v = sa.func.unnest(*arrays).table_valued(*columns).render_derived()
    return {name: v.c[name] for name, _ in params}


class Batch:
    """A write of many rows, one call: ``build(0)`` is one row's statement,
    run with ``executemany``; ``build(ARRAYS)`` writes any number of rows at
    once from one array per argument (see :func:`row_source`).

    The dialects in ``single`` (PostgreSQL) get the one statement: psycopg's
    ``executemany`` costs Python per row, about three times the CPU of one
    statement with every row in it. sqlite3 loops in C, and gets the
    executemany. The arrays take the place of multi-row ``VALUES`` lists,
    which needed a statement compiled (a few milliseconds each) and prepared
    for every batch size: a fresh worker spent a sixth of its CPU on that.
    """

    def __init__(
        self,
        build: Callable[[int], Any],
        args: Sequence[str],
        *,
        columns: Sequence[str] | None = None,
        single: Sequence[str] = ("postgresql",),
    ) -> None:
        self.args, self.single = tuple(args), frozenset(single)
        self.one = Statement(build(0), args, columns=columns, many=True)
        self._build = build
        _batches.append(self)

    @functools.cached_property
    def arrays(self) -> Statement:
        """The statement writing every row from one array per column, built on
        first use (its array types are PostgreSQL's)."""
        return Statement(self._build(ARRAYS), self.args, only=sorted(self.single))


#: Every :class:`Batch` made so far, for :func:`compile_all`.
_batches: list[Batch] = []


def insert_batch(table: sa.Table, *columns: str) -> Batch:
    """The :class:`Batch` INSERT of rows of ``columns`` (in that order) into ``table``."""

    def build(rows: int) -> Any:
        if rows == 0:
            return table.insert()
        v = row_source([(c, table.c[c].type) for c in columns], rows)
        return table.insert().from_select(list(columns), sa.select(*[v[c] for c in columns]))

    return Batch(build, columns, columns=columns)


class Tx:
    """A transaction on the driver's cursor (see :meth:`Database.direct`)."""

    def __init__(self, dialect: str, cursor: Any) -> None:
        self.dialect = dialect
        self.cursor = cursor
        #: Whether :meth:`many` counts the rows matched by all its rows.
        self.sane_multi_rowcount: bool = dialect_of(dialect).supports_sane_multi_rowcount

    def execute(self, stmt: Statement, row: Sequence[Any] = ()) -> int:
        """Run ``stmt`` once; the rows it matched."""
        compiled = stmt.on(self.dialect)
        self.cursor.execute(compiled.sql, compiled.params(row))
        return int(self.cursor.rowcount)

    def many(self, batch: Batch, rows: Sequence[Sequence[Any]]) -> int:
        """Write ``rows`` with ``batch``; the rows matched in all."""
        if not rows:
            return 0
        if self.dialect not in batch.single:
            compiled = batch.one.on(self.dialect)
            self.cursor.executemany(compiled.sql, [compiled.params(row) for row in rows])
        else:
            compiled = batch.arrays.on(self.dialect)
            columns = [list(column) for column in zip(*rows, strict=True)]
            self.cursor.execute(compiled.sql, compiled.params(columns))
        return int(self.cursor.rowcount)

    def rows(self, stmt: Statement, row: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """Run ``stmt`` once; the rows it returned."""
        compiled = stmt.on(self.dialect)
        self.cursor.execute(compiled.sql, compiled.params(row))
        return compiled.rows(self.cursor)

    def notify(self, channel: str, payload: str = "") -> None:
        """PostgreSQL ``NOTIFY`` at commit (a no-op on SQLite, whose workers poll)."""
        if self.dialect == "postgresql":
            self.execute(_NOTIFY, (channel, payload))


_NOTIFY = Statement(
    sa.select(
        sa.func.pg_notify(
            sa.bindparam("b_channel", type_=sa.String), sa.bindparam("b_payload", type_=sa.String)
        )
    ),
    ("b_channel", "b_payload"),
)
