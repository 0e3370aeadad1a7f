"""PostgreSQL LISTEN on a thread of its own: wakeups for idle workers.

Notifications are only a way to react sooner; nothing depends on receiving
them (the worker polls anyway), so a lost connection just means polling
until the listener has reconnected.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from sqlalchemy.engine import URL

__all__ = ["Listener"]

log = logging.getLogger("stockade.worker")

#: Seconds between checks of the stop flag while waiting for notifications.
TICK = 0.5


class Listener:
    """Calls ``callback(channel, payload)`` (from its thread) for each notification."""

    def __init__(
        self, url: URL, channels: Sequence[str], callback: Callable[[str, str], None]
    ) -> None:
        self.conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.channels = list(channels)
        self.callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stockade-listen", daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and wait for the thread (at most a tick or a connect timeout)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        import psycopg

        delay = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    for channel in self.channels:
                        conn.execute(f'LISTEN "{channel}"')
                    self.connected.set()
                    delay = 0.2
                    # Whatever happened while we were not listening is unknown: wake up once.
                    self.callback("", "")
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=TICK):
                            self.callback(note.channel, note.payload)
            except psycopg.Error as exc:
                self.connected.clear()
                log.debug("listener: %s; reconnecting in %.1fs", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
