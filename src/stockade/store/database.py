"""The connector: a database handle that knows nothing about jobs.

:class:`Database` wraps one SQLAlchemy engine and offers what the job
manager needs and no more: a write transaction, a read transaction, a
notification inside a transaction, and the dialect's name. Driver errors
are mapped here, at the boundary, to :class:`~stockade.errors.StoreError`
subclasses with a one-line message: an unreachable server or a lost
connection becomes :class:`~stockade.errors.StoreUnavailable` (transient:
workers retry it), everything else a plain :class:`StoreError`.

SQLite runs in WAL mode with ``synchronous=NORMAL`` (durable across process
crashes; a power cut may lose the last commits but never corrupts) and a
busy timeout, and every write transaction starts with ``BEGIN IMMEDIATE``
so that two writers queue on the lock instead of failing to upgrade a read
lock. PostgreSQL gets a small connection pool, and a ping replaces
connections a server restart broke: each one idle for over a second is
pinged before use (not every checkout, which would cost a round trip per
transaction).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool

from stockade.errors import SchemaError, StoreError, StoreUnavailable, StoreURLError
from stockade.private import DIR_MODE, private_file
from stockade.store.direct import Tx
from stockade.store.sqlitewal import enable_wal
from stockade.store.url import safe_url

__all__ = ["Database"]

_READONLY = "stockade_readonly"
#: PostgreSQL SQLSTATEs for a missing table or column: the schema is not ours yet.
_SCHEMA_CODES = ("42P01", "42703")
SQLITE_BUSY_MS = 30_000
#: A PostgreSQL connection idle this long (seconds) is pinged before use.
PING_IDLE = 1.0
_IDLE_SINCE = "stockade_idle_since"


class Database:
    """One database: SQLite file (or ``:memory:``) or PostgreSQL."""

    def __init__(self, url: URL, *, pool_size: int = 4) -> None:
        self.url = url
        self.name = safe_url(url)
        self.dialect = "sqlite" if url.drivername.startswith("sqlite") else "postgresql"
        self.engine = self._create_engine(url, pool_size)

    def _create_engine(self, url: URL, pool_size: int) -> Engine:
        try:
            if self.dialect == "sqlite":
                return self._sqlite_engine(url)
            engine = sa.create_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                connect_args={"connect_timeout": 5},
            )
        except (exc.ArgumentError, exc.NoSuchModuleError) as error:
            raise StoreURLError(f"database URL {self.name!r} is not usable: {error}") from error
        _ping_when_idle(engine)
        return engine

    def _sqlite_engine(self, url: URL) -> Engine:
        memory = url.database in (None, "", ":memory:")
        if not memory:
            assert url.database is not None
            try:
                _private_sqlite(Path(url.database))
            except OSError as error:
                raise StoreError(
                    f"cannot create the data directory for {self.name}: {error}"
                ) from error
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_MS / 1000},
            **({"poolclass": StaticPool} if memory else {}),
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            enable_wal(dbapi_conn, SQLITE_BUSY_MS / 1000)
            cursor = dbapi_conn.cursor()
            for pragma in (
                "synchronous=NORMAL",
                f"busy_timeout={SQLITE_BUSY_MS}",
                "foreign_keys=ON",
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            sql = "BEGIN" if conn.get_execution_options().get(_READONLY) else "BEGIN IMMEDIATE"
            # Straight to the driver: a third of the cost of a small write
            # transaction went to running BEGIN through SQLAlchemy's machinery.
            try:
                conn.connection.driver_connection.execute(sql)  # type: ignore[union-attr]
            except sqlite3.Error as error:  # mapped like any driver error
                raise exc.DBAPIError.instance(sql, None, error, sqlite3.Error) from error

        return engine

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back on error."""
        with self._mapped(), self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def direct(self, *, read: bool = False) -> Iterator[Tx]:
        """A write transaction on the driver's own cursor, for the statements of
        :mod:`~stockade.store.direct`: committed when the block ends, rolled
        back on error, driver errors mapped as :meth:`transaction` maps them.
        With ``read``, a read transaction (on SQLite it takes no write lock).

        The connection comes from the same pool (so the idle ping applies);
        what is skipped is SQLAlchemy's per-statement and per-transaction
        machinery, the larger part of a worker's record-and-claim.
        """
        dbapi_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        try:
            with self._mapped():  # what the pool's own checks raise comes wrapped
                fairy = self.engine.raw_connection()
        except dbapi_error as error:  # a failed connect does not: the driver's own
            raise self._driver_error(error, dbapi_error, lost=False) from error
        try:
            cursor = self._cursor(fairy.dbapi_connection)
            try:
                if self.dialect == "sqlite":
                    cursor.execute("BEGIN" if read else "BEGIN IMMEDIATE")
                yield Tx(self.dialect, cursor)
                fairy.commit()
            finally:
                cursor.close()
        except dbapi_error as error:
            _rollback(fairy)
            lost = self._broke(error, fairy.dbapi_connection)
            if lost:  # the pool must not hand this connection out again
                fairy.invalidate(error)
            raise self._driver_error(error, dbapi_error, lost=lost) from error
        except BaseException:
            _rollback(fairy)
            raise
        finally:
            fairy.close()

    @contextlib.contextmanager
    def direct_on(self, conn: Connection) -> Iterator[Tx]:
        """A :class:`Tx` inside ``conn``'s open transaction (see :meth:`direct`):
        for a caller that already holds one. Driver errors are mapped as
        :meth:`transaction` maps them; a connection they broke is invalidated."""
        dbapi_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        driver = conn.connection.dbapi_connection
        cursor = self._cursor(driver)
        try:
            yield Tx(self.dialect, cursor)
        except dbapi_error as error:
            lost = self._broke(error, driver)
            if lost:
                with contextlib.suppress(Exception):
                    conn.invalidate(error)
            raise self._driver_error(error, dbapi_error, lost=lost) from error
        finally:
            cursor.close()

    def _cursor(self, driver: Any) -> Any:
        """A cursor on the driver's connection for :class:`Tx` statements: on
        PostgreSQL a raw one, for their ``$1`` placeholders (see
        :data:`~stockade.store.direct.DIALECTS`)."""
        if self.dialect == "postgresql":
            return _raw_cursor(self.engine, driver)
        return driver.cursor()

    def _broke(self, error: Exception, driver: Any) -> bool:
        """Whether the driver's ``error`` means its connection is gone."""
        return bool(self.engine.dialect.is_disconnect(error, driver, None))  # type: ignore[arg-type]

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (on SQLite it takes no write lock)."""
        with self._mapped(), self.engine.connect() as base:
            conn = base.execution_options(**{_READONLY: True})
            with conn.begin():
                yield conn

    def notify(self, conn: Connection, channel: str, payload: str = "") -> None:
        """Wake listeners of ``channel`` when ``conn``'s transaction commits
        (PostgreSQL ``NOTIFY``; a no-op on SQLite, whose workers poll)."""
        if self.dialect == "postgresql":
            conn.execute(sa.select(sa.func.pg_notify(channel, payload)))

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers."""
        with self.read() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        """Turn driver errors into stockade's, with a one-line message."""
        try:
            yield
        except exc.DBAPIError as error:
            raise self.map_error(error) from error

    def _driver_error(self, error: Exception, base: type[Exception], *, lost: bool) -> StoreError:
        """:meth:`map_error` for an error raised by the driver itself (``base``:
        its ``Error`` class), wrapped as SQLAlchemy would have."""
        wrapped = exc.DBAPIError.instance(None, None, error, base, connection_invalidated=lost)
        assert isinstance(wrapped, exc.DBAPIError)  # given a driver error, always one
        return self.map_error(wrapped)

    def map_error(self, error: exc.DBAPIError) -> StoreError:
        """The :class:`StoreError` a driver error means."""
        detail = _first_line(str(error.orig) if error.orig is not None else str(error))
        code = getattr(error.orig, "sqlstate", None)
        if code in _SCHEMA_CODES or "no such table" in detail or "no such column" in detail:
            return SchemaError(
                f"the database {self.name} has no stockade schema or an old one ({detail}): "
                "run `stockade db upgrade`"
            )
        if error.connection_invalidated or isinstance(
            error, exc.OperationalError | exc.InterfaceError
        ):
            return StoreUnavailable(f"cannot use the database {self.name}: {detail}")
        return StoreError(f"database error on {self.name}: {detail}")


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use if it sat idle over :data:`PING_IDLE` s.

    SQLAlchemy's ``pool_pre_ping`` pings on *every* checkout: one more round
    trip per transaction, a quarter of a worker's record-and-claim. A
    connection used a moment ago is trusted instead; if a server restart broke
    it in that moment, the statement fails as :class:`StoreUnavailable`
    (workers retry it) and SQLAlchemy discards the pool's older connections.
    """

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < PING_IDLE:
            return
        try:
            cursor = dbapi_conn.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_conn.rollback()
        except Exception as error:  # the pool retries with a new connection
            raise exc.DisconnectionError(str(error)) from error


def _raw_cursor(engine: Engine, connection: Any) -> Any:
    """A psycopg ``RawCursor`` for :class:`Tx` statements, which sends lists
    (the arrays of :class:`~stockade.store.direct.Batch`) in binary: the text
    form escapes every quote of every JSON value with a regular expression,
    about 0.7 ms for one batch's results."""
    from psycopg.types.array import ListBinaryDumper

    cursor = engine.dialect.loaded_dbapi.RawCursor(connection)
    cursor.adapters.register_dumper(list, ListBinaryDumper)
    return cursor


def _rollback(fairy: Any) -> None:
    """Roll back a failed direct transaction; a broken connection cannot, and
    the error that broke it is the one to report."""
    with contextlib.suppress(Exception):
        fairy.rollback()


def _first_line(text: str) -> str:
    for raw in text.strip().splitlines():
        line = raw.strip()
        if line:
            return line
    return "unknown error"


def _private_sqlite(path: Path) -> None:
    """The SQLite file and its ``-wal``/``-shm`` mode 0600 (SQLite gives the
    latter the database's mode), its directory 0700 if stockade makes it."""
    if not path.parent.is_dir():
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    private_file(path)
    for suffix in ("-wal", "-shm"):
        private_file(f"{path}{suffix}", create=False)
