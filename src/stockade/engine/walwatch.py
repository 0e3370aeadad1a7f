"""SQLite wakeups for idle workers: inotify on the database's write-ahead log.

PostgreSQL wakes an idle worker with ``NOTIFY`` (:mod:`~stockade.engine.listener`);
SQLite has no such thing, so a worker with nothing to do used to poll, and
a job submitted to an idle worker waited up to ``--poll`` (0.5 s by
default) before it started. Every commit to a SQLite database in WAL mode
writes its ``-wal`` file, whichever process makes it (``stockade submit``,
the HTTP service, a pipeline), so the kernel tells an idle worker about new
work at once: inotify ``IN_MODIFY`` on the database's directory, for the
log's name (a watch on the file itself would be lost when the last
connection removes it).

A wakeup only makes the worker claim sooner; it never decides anything. A
commit that queued nothing costs one claim that finds nothing (the worker's
own heartbeats, say); a claim that finds nothing writes no page, so it wakes
nobody. Polling stays the fallback: where inotify is missing or refuses
(another kernel, a network file system that does not report writes),
nothing changes.

Three system calls through ``ctypes``, as :mod:`~stockade.engine.storeproc`
calls ``prctl``: not worth a dependency.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path

__all__ = ["WalWatch"]

log = logging.getLogger("stockade.worker")

_IN_MODIFY = 0x00000002
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


class WalWatch:
    """Calls ``on_write()`` on the event loop whenever ``database``'s WAL is written."""

    def __init__(self, database: str, on_write: Callable[[], None]) -> None:
        path = Path(database).absolute()
        self.directory = path.parent
        self.name = os.fsencode(path.name + "-wal")
        self.on_write = on_write
        self._fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Start watching; ``False`` (and a debug line) where inotify is not to be had."""
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd < 0:
                raise OSError(ctypes.get_errno(), "inotify_init1")
            if libc.inotify_add_watch(fd, os.fsencode(self.directory), _IN_MODIFY) < 0:
                error = ctypes.get_errno()
                os.close(fd)
                raise OSError(error, f"inotify_add_watch {self.directory}")
        except (OSError, AttributeError) as exc:  # AttributeError: no such libc function
            log.debug("no inotify on %s (%s): polling only", self.directory, exc)
            return False
        self._fd, self._loop = fd, loop
        loop.add_reader(fd, self._readable)
        return True

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        if self._fd < 0:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 64 * 1024)
        except BlockingIOError:
            return
        if self.name in _names(data):
            self.on_write()


def _names(data: bytes) -> set[bytes]:
    """The file names of a read's inotify events."""
    names, offset = set(), 0
    while offset + _EVENT.size <= len(data):
        _, _, _, length = _EVENT.unpack_from(data, offset)
        start = offset + _EVENT.size
        names.add(data[start : start + length].rstrip(b"\0"))
        offset = start + length
    return names
