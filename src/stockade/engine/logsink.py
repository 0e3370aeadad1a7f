"""A runner sink that turns output events into log chunks in the store.

Only a head and a tail of each attempt's output reach the store (the task's
``log_head`` and ``log_tail``, see :mod:`~stockade.engine.logbudget`): the
head as it comes, the tail, with a marker of what was cut, when the attempt
ends.

Output is buffered and written in batches: at most :data:`FLUSH_INTERVAL`
after the first unwritten byte, sooner when :data:`FLUSH_BYTES` pile up, and
on close. Consecutive output of one stream is merged into one chunk, so a job
printing 10,000 short lines a second costs a few inserts, not 10,000. The
sink never blocks the job: writes go through the worker's store thread, and
when the store falls behind by more than :data:`BACKLOG_BYTES` (or is down),
chunks are dropped and counted rather than waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from stockade.engine.logbudget import MARKER_STREAM, LogBudget
from stockade.errors import StoreError
from stockade.runner.events import Event, count_drop
from stockade.runplan.logic import DEFAULT_LOG_HEAD, DEFAULT_LOG_TAIL

__all__ = ["BACKLOG_BYTES", "FLUSH_BYTES", "FLUSH_INTERVAL", "StoreLogSink"]

FLUSH_INTERVAL = 0.2
FLUSH_BYTES = 64 * 1024
BACKLOG_BYTES = 8 * 1024 * 1024

Writer = Callable[[Sequence[dict[str, Any]]], Awaitable[None]]


class StoreLogSink:
    """Log chunks of one attempt (``job_id``, ``attempt``) written with ``write``:
    its first ``head`` and last ``tail`` bytes of output."""

    #: Only output becomes log chunks: the runner need not build the rest.
    event_kinds = frozenset({"output"})

    def __init__(
        self,
        write: Writer,
        job_id: str,
        attempt: int,
        *,
        head: int = DEFAULT_LOG_HEAD,
        tail: int = DEFAULT_LOG_TAIL,
        interval: float = FLUSH_INTERVAL,
        whole: str | None = None,
    ) -> None:
        self._write = write
        #: Where the whole output is, if somewhere (said in the marker).
        self.whole = whole
        self._budget = LogBudget(head, tail)
        #: The note that the head is full was written.
        self._noticed = False
        self.job_id = job_id
        self.attempt = attempt
        self.interval = interval
        self._pending: list[dict[str, Any]] = []
        self._pending_bytes = 0
        self._in_flight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._dropped = 0
        #: Output events (or chunks the store refused) dropped, per stream.
        self.dropped_streams: dict[str, int] = {}
        self.chunks_written = 0

    @property
    def dropped(self) -> int:
        return self._dropped

    def emit(self, event: Event) -> None:
        if event.kind != "output":
            return
        data = event.raw if event.raw is not None else event.text.encode()
        if not data:
            return
        stream = event.data.get("stream", "stdout")
        head = self._budget.add(stream, data, event.time)
        if head and self._in_flight + self._pending_bytes > BACKLOG_BYTES:
            self._dropped += 1
            count_drop(self.dropped_streams, event)
        elif head:
            text = event.text if len(head) == len(data) else str(head, "utf-8", "replace")
            self._queue(stream, text, event.time)
        if len(head) < len(data) and not self._noticed:
            self._noticed = True
            self._queue(MARKER_STREAM, self._budget.notice(), event.time)

    def _queue(self, stream: str, text: str, when: float) -> None:
        last = self._pending[-1] if self._pending else None
        if last is not None and last["stream"] == stream:
            last["text"] += text
        else:
            self._pending.append({
                "job_id": self.job_id, "attempt": self.attempt, "stream": stream,
                "text": text, "time": when,
            })  # fmt: skip
        self._pending_bytes += len(text)
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self.flush)

    def _queue_tail(self) -> None:
        """The end of the attempt: the marker of what was cut, then the tail."""
        held = self._budget.held()
        marker = self._budget.marker(self.whole)
        if marker is not None:
            self._queue(MARKER_STREAM, marker, held[0][2] if held else time.time())
        for stream, data, when in held:
            self._queue(stream, str(data, "utf-8", "replace"), when)
        self._budget = LogBudget(0, 0)  # written: a second close adds nothing

    def flush(self) -> None:
        """Start writing what is buffered (returns at once)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        batch, size = self._pending, self._pending_bytes
        self._pending, self._pending_bytes = [], 0
        self._in_flight += size
        task = asyncio.get_running_loop().create_task(self._send(batch, size))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[dict[str, Any]], size: int) -> None:
        try:
            await self._write(batch)
            self.chunks_written += len(batch)
        except StoreError:
            self._dropped += len(batch)
            for chunk in batch:
                stream = chunk["stream"]
                self.dropped_streams[stream] = self.dropped_streams.get(stream, 0) + 1
        finally:
            self._in_flight -= size

    async def aclose(self) -> None:
        """Write what is left (the tail) and wait for every write to finish."""
        self._queue_tail()
        self.flush()
        while self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.gather(*list(self._tasks))
