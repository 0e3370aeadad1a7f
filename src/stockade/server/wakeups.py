"""Wakeups for log streams: PostgreSQL ``NOTIFY`` turned into asyncio events.

On PostgreSQL the store notifies :data:`~stockade.store.LOGS_CHANNEL` with
the job's id when log chunks of it are written or the job ends (and
:data:`~stockade.store.CANCEL_CHANNEL` when one is asked to stop). One
:class:`~stockade.engine.listener.Listener` thread per server listens;
each notification sets the events of the streams following those jobs, on
the event loop's thread. A stream therefore reads the store when there is
something to read instead of every 0.2 s.

Notifications only make streams react sooner: while the listener is not
connected (and always on SQLite, which has no ``NOTIFY``) streams poll as
before, and even a listening stream re-reads at least every
:data:`LISTENING_POLL` seconds in case a notification was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from sqlalchemy.engine import URL

from stockade.engine.listener import Listener
from stockade.store import CANCEL_CHANNEL, LOGS_CHANNEL

__all__ = ["LISTENING_POLL", "POLL", "Wakeups"]

#: Seconds between reads of a stream that gets no notifications.
POLL = 0.2
#: Seconds between reads of a stream that does (a safety net only).
LISTENING_POLL = 1.0


class Wakeups:
    """The log streams waiting for news of a job, and the listener that brings it."""

    def __init__(self) -> None:
        self._followers: dict[str, set[asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: Listener | None = None

    def start(self, url: URL, loop: asyncio.AbstractEventLoop) -> None:
        """Listen on the database at ``url`` (PostgreSQL) and wake streams on ``loop``."""
        self._loop = loop
        self._listener = Listener(url, [LOGS_CHANNEL, CANCEL_CHANNEL], self._on_note)
        self._listener.start()

    def stop(self) -> None:
        """Stop listening (streams fall back to polling)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()

    @property
    def listening(self) -> bool:
        """Whether notifications arrive now."""
        return self._listener is not None and self._listener.connected.is_set()

    def interval(self) -> float:
        """How long a stream may wait before it reads the store again."""
        return LISTENING_POLL if self.listening else POLL

    @contextlib.contextmanager
    def follow(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever ``job_id`` has news, for as long as the block runs.

        Clear it *before* reading the store and wait on it after: news that
        comes during the read sets it again, so nothing is missed."""
        event = asyncio.Event()
        self._followers.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._followers.get(job_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._followers[job_id]

    def following(self) -> int:
        """How many jobs have a stream following them."""
        return len(self._followers)

    def wake_all(self) -> None:
        """Wake every stream now (the server starts draining). On the loop's thread."""
        self._wake("")

    def _on_note(self, channel: str, payload: str) -> None:
        """From the listener's thread: hand the news to the loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake, payload)

    def _wake(self, payload: str) -> None:
        # An empty payload (a reconnect, or too many ids) wakes every stream.
        ids = payload.split(",") if payload else list(self._followers)
        for job_id in ids:
            for event in self._followers.get(job_id, ()):
                event.set()
