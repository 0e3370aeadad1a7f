"""Sinks that write to file descriptors without ever blocking the job.

A :class:`WriterSink` hands events to a dedicated thread through a bounded
buffer (by bytes). When the consumer (a terminal, a pipe read by a slow
program) falls behind and the buffer is full, events are dropped and
counted, never waited for: the job's pipes are always drained.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import threading
from collections.abc import Callable

from stockade.runner.events import Event, count_drop
from stockade.runner.termstatus import StatusLine

__all__ = ["JsonEventSink", "TerminalSink", "WriterSink"]

DEFAULT_BUDGET = 64 * 1024 * 1024


class WriterSink:
    """Base: format events to ``(fd, bytes)`` pairs and write them in a thread."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self._budget = budget
        self._pending = 0
        self._queue: collections.deque[tuple[int, bytes | memoryview]] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._dropped = 0
        #: Output events dropped, per stream.
        self.dropped_streams: dict[str, int] = {}
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        return self._dropped

    def format(self, event: Event) -> list[tuple[int, bytes | memoryview]]:
        """The writes one event becomes; override."""
        raise NotImplementedError

    def emit(self, event: Event) -> None:
        writes = self.format(event)
        if not writes:
            return
        size = sum(len(b) for _, b in writes)
        with self._cond:
            if self._pending + size > self._budget and event.kind != "finish":
                self._dropped += 1
                count_drop(self.dropped_streams, event)
                return
            self._pending += size
            self._queue.extend(writes)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="stockade-sink", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                fd, data = self._queue.popleft()
            with contextlib.suppress(OSError):  # a closed terminal must not take the job down
                _write_all(fd, data)
            with self._cond:
                self._pending -= len(data)

    async def aclose(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class TerminalSink(WriterSink):
    """The job's stdout and stderr, byte for byte (masked), on two fds.

    Warnings, annotations and group titles go to ``err_fd`` prefixed with
    ``stockade:`` when ``show_notes`` is set; on a terminal, progress is a
    status line there (:mod:`stockade.runner.termstatus`).
    """

    def __init__(
        self,
        out_fd: int = 1,
        err_fd: int = 2,
        *,
        show_notes: bool = True,
        budget: int = DEFAULT_BUDGET,
    ) -> None:
        super().__init__(budget)
        self.out_fd = out_fd
        self.err_fd = err_fd
        self.show_notes = show_notes
        ttys = {fd for fd in (out_fd, err_fd) if os.isatty(fd)}
        self.status = StatusLine(err_fd, ttys) if err_fd in ttys and show_notes else None

    def format(self, event: Event) -> list[tuple[int, bytes | memoryview]]:
        writes: list[tuple[int, bytes | memoryview]] = []
        if event.kind == "output":
            fd = self.out_fd if event.data["stream"] == "stdout" else self.err_fd
            data = event.raw if event.raw is not None else event.text.encode()
            writes = [(fd, data)]
        elif not self.show_notes:
            return []
        elif event.kind in ("warning", "annotation") or _is_group(event):
            writes = [(self.err_fd, f"stockade: {_note(event)}\n".encode())]
        elif self.status is not None and event.kind == "progress":
            return self.status.progress(event.data)
        elif self.status is not None and event.kind == "finish":
            return self.status.clear()
        return self.status.around(writes) if self.status is not None and writes else writes


def _is_group(event: Event) -> bool:
    return event.kind == "command" and event.data.get("name") == "group"


def _note(event: Event) -> str:
    if event.kind == "command":  # a group: its title, where the job's output starts it
        return f"group: {event.data.get('message', '')}"
    if event.kind == "annotation":
        where = event.data.get("file") or ""
        if where and event.data.get("line"):
            where += f":{event.data['line']}"
        prefix = f"{event.data['level']}: " + (f"{where}: " if where else "")
        return prefix + str(event.data.get("message", ""))
    return f"warning: {event.data.get('message', '')}"


class JsonEventSink(WriterSink):
    """One JSON object per line on ``fd`` for every event (``--json``).

    Output events are split into one event per line, in the spirit of
    ``go test -json``.
    """

    def __init__(
        self,
        fd: int = 1,
        *,
        budget: int = DEFAULT_BUDGET,
        dumps: Callable[[object], str] = json.dumps,
    ) -> None:
        super().__init__(budget)
        self.fd = fd
        self._dumps = dumps

    def format(self, event: Event) -> list[tuple[int, bytes | memoryview]]:
        if event.kind != "output":
            return [(self.fd, (self._dumps(event.to_dict()) + "\n").encode())]
        base = event.to_dict()
        lines = event.text.splitlines(keepends=True)
        out = []
        for line in lines:
            base["text"] = line
            out.append(self._dumps(base))
        return [(self.fd, ("\n".join(out) + "\n").encode())] if out else []
