"""A runner sink that records a job's ``::progress`` in the store.

A job may report progress many times a second; readers (the dashboard polls
a job's events every second) need only the latest. So the latest value is
kept and written (the attempt's one ``progress`` event, updated in place) at
most once per :data:`PROGRESS_INTERVAL`, and once more when the attempt ends
if a newer value is still unwritten. Like the log sink it never blocks the job: a write
that fails (the store is down) is counted as dropped, not retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from stockade.errors import StoreError
from stockade.runner.events import Event

__all__ = ["PROGRESS_INTERVAL", "ProgressWriter", "StoreProgressSink"]

PROGRESS_INTERVAL = 1.0

ProgressWriter = Callable[[str, int, dict[str, Any]], Awaitable[None]]


class StoreProgressSink:
    """The latest progress of one attempt (``job_id``, ``attempt``), written with ``write``."""

    event_kinds = frozenset({"progress"})

    def __init__(
        self,
        write: ProgressWriter,
        job_id: str,
        attempt: int,
        *,
        interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self._write = write
        self.job_id = job_id
        self.attempt = attempt
        self.interval = interval
        self._latest: dict[str, Any] | None = None
        self._last_write = -interval
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._dropped = 0

    @property
    def dropped(self) -> int:
        return self._dropped

    def emit(self, event: Event) -> None:
        if event.kind != "progress":
            return
        self._latest = {"value": event.data["value"], "message": event.data.get("message", "")}
        if self._timer is not None:
            return
        wait = self._last_write + self.interval - time.monotonic()
        if wait <= 0:
            self.flush()
        else:
            self._timer = asyncio.get_running_loop().call_later(wait, self.flush)

    def flush(self) -> None:
        """Start writing the latest unwritten value (returns at once)."""
        self._timer = None
        if self._latest is None:
            return
        data, self._latest = self._latest, None
        self._last_write = time.monotonic()
        task = asyncio.get_running_loop().create_task(self._send(data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, data: dict[str, Any]) -> None:
        try:
            await self._write(self.job_id, self.attempt, data)
        except StoreError:
            self._dropped += 1

    async def aclose(self) -> None:
        """Write the last value and wait for every write to finish."""
        if self._timer is not None:
            self._timer.cancel()
        self.flush()
        while self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.gather(*list(self._tasks))
