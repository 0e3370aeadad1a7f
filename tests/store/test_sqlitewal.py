"""Connections opening a new SQLite store together all get it in WAL mode.

The race is real and not on demand: SQLite answers "database is locked" at
once to the connection that would deadlock, and which one that is depends on
the scheduler. The first test makes many rounds of connections meet on new
files (it failed on about one round in 25 before :mod:`stockade.store.sqlitewal`);
the others drive the retry with a connection double, which can say "busy"
exactly when a test needs it.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from stockade.store.database import Database
from stockade.store.sqlitewal import Retry, enable_wal
from stockade.store.url import resolve_url

ROUNDS, CONNECTIONS = 200, 8


def test_connections_meeting_on_a_new_store_file_all_get_in(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    for n in range(ROUNDS):
        url = resolve_url(f"sqlite:///{tmp_path / str(n) / 'stockade.db'}", None)
        gate = threading.Barrier(CONNECTIONS)

        def connect(url: URL = url, gate: threading.Barrier = gate) -> None:
            db = Database(url)
            try:
                gate.wait(30)
                with db.read():
                    pass
            except BaseException as exc:  # reported by the test, not lost in a thread
                errors.append(exc)
            finally:
                db.dispose()

        threads = [threading.Thread(target=connect) for _ in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, f"round {n}: {errors[0]!r}"
    journal = sqlite3.connect(tmp_path / "0" / "stockade.db").execute("PRAGMA journal_mode")
    assert journal.fetchone() == ("wal",)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class _Busy:
    """A connection that answers SQLITE_BUSY ``times`` times, then succeeds."""

    def __init__(self, times: int, code: int = sqlite3.SQLITE_BUSY) -> None:
        self.times, self.code, self.tries = times, code, 0

    def execute(self, sql: str, /) -> object:
        self.tries += 1
        if self.tries <= self.times:
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorcode = self.code
            raise error
        return None


def test_the_backoff_doubles_to_its_cap_and_ends_at_the_timeout() -> None:
    clock = _Clock()
    retry = Retry(0.2, first=0.01, longest=0.04, clock=clock)
    delays = []
    while (delay := retry.next_delay()) is not None:
        delays.append(round(delay, 6))
        clock.sleep(delay)
    assert delays[:4] == [0.01, 0.02, 0.04, 0.04]
    assert round(sum(delays), 6) == 0.2  # the last wait is cut to what is left


def test_a_busy_pragma_is_tried_again_until_it_succeeds() -> None:
    clock, conn = _Clock(), _Busy(times=3)
    enable_wal(conn, 30.0, clock=clock, sleep=clock.sleep)
    assert conn.tries == 4


def test_busy_past_the_timeout_gives_the_error() -> None:
    clock, conn = _Clock(), _Busy(times=10_000)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(conn, 1.0, clock=clock, sleep=clock.sleep)
    assert clock.now == pytest.approx(101.0)


def test_other_errors_are_not_retried() -> None:
    clock, conn = _Clock(), _Busy(times=1, code=sqlite3.SQLITE_IOERR)
    with pytest.raises(sqlite3.OperationalError):
        enable_wal(conn, 30.0, clock=clock, sleep=clock.sleep)
    assert conn.tries == 1
