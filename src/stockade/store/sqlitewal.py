"""Putting a SQLite connection in write-ahead-log mode, also while others open the same file.

``PRAGMA journal_mode=WAL`` on a database still in rollback mode needs the
file's exclusive lock. When connections to a new store file start together
(workers, submitters and ``stockade run`` all creating the default store on
first use), one of them can hold its shared lock while another waits for the
exclusive one: SQLite breaks that deadlock by answering "database is locked"
(``SQLITE_BUSY``) at once, without the busy handler that makes every other
statement wait. :func:`enable_wal` tries again, with a short backoff, until
the busy timeout has passed; once the file is in WAL mode the pragma takes
no lock at all. Standard library only: the full store's connections and
:mod:`stockade.store.literuns`'s both use it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Retry", "enable_wal"]


class _Connection(Protocol):
    def execute(self, sql: str, /) -> object: ...


class Retry:
    """When to try a busy pragma again: backoff from ``first`` doubling to
    ``longest`` seconds, until ``timeout`` seconds after the first try."""

    def __init__(
        self,
        timeout: float,
        *,
        first: float = 0.001,
        longest: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._deadline = clock() + timeout
        self._delay = first
        self._longest = longest

    def next_delay(self) -> float | None:
        """Seconds to wait before the next try; ``None`` once time is up."""
        left = self._deadline - self._clock()
        if left <= 0:
            return None
        delay = min(self._delay, left)
        self._delay = min(self._delay * 2, self._longest)
        return delay


def enable_wal(
    conn: _Connection,
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """``PRAGMA journal_mode=WAL`` on ``conn``, tried again while SQLite
    answers ``SQLITE_BUSY``, for up to ``timeout`` seconds; then its error."""
    retry = Retry(timeout, clock=clock)
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
                raise
            delay = retry.next_delay()
            if delay is None:
                raise
        sleep(delay)
