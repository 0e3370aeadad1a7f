"""The worker's store process: records ends and claims jobs off the worker's GIL.

A worker running short jobs spends about as much Python on recording them
(SQLAlchemy, the driver, JSON) as on running them, and both shared one
GIL: every system call of the event loop (a pipe, an epoll change, an
unlink) let the store thread take the GIL and run until its next query,
while the loop waited. Measured on a 2-CPU machine, doing the store work
on the loop's own thread was already faster than the thread; doing it in
another process takes it off the loop's GIL and onto the other CPU.

Only the two calls on a busy worker's path go there:
:meth:`~stockade.store.JobManager.claim` and
:meth:`~stockade.store.JobManager.finish_and_claim`. Everything else
(registration, leases, logs, releases) stays on the worker's store thread.
A job's log chunks are committed before its end is sent (the runner closes
its sinks before it returns), so the order of a job's records holds.

Protocol, over a private ``socketpair``: frames of a 4-byte big-endian
length and a pickle. The parent's first frame is the store URL (never on
the command line, where ``ps`` would show a password); then
``(id, method, args)`` requests, answered ``(id, True, result)`` or
``(id, False, (error class name, message))``. The child ignores SIGINT and
SIGTERM (the worker decides when to stop), dies with its parent
(``PR_SET_PDEATHSIG``) and exits at EOF.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
from typing import Any

from stockade import errors
from stockade.errors import StockadeError, StoreError, StoreUnavailable

__all__ = ["METHODS", "StoreProcess", "main"]

log = logging.getLogger("stockade.worker")

#: The JobManager methods the store process answers.
METHODS = frozenset({"claim", "finish_and_claim"})
_LENGTH = struct.Struct("!I")
_PR_SET_PDEATHSIG = 1


def _frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def _error(exc: BaseException) -> tuple[str, str]:
    return type(exc).__name__, str(exc)


def _rebuild(name: str, message: str) -> StockadeError:
    """The store error the child raised, as the same class where it has the usual signature."""
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, StoreError):
        try:
            return cls(message)
        except TypeError:
            pass
    return StoreError(f"{name}: {message}")


class StoreProcess:
    """The parent's side: start the child, send calls, match answers (asyncio)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffer = bytearray()
        #: Request bytes the socket has not taken yet (see :meth:`_send`).
        self._unsent = bytearray()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = 0
        self.ready = False

    @property
    def pid(self) -> int | None:
        """The child's pid while it is started (None before and after)."""
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        """Start the child and wait until its store is open; StoreError if it cannot be."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "stockade.engine.storeproc", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                # Its own session, like a job's: if the worker is killed, the
                # orphan is reaped by whichever stockade is the subreaper.
                start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            ours.close()
            raise StoreError(f"cannot start the store process: {exc}") from exc
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(ours.fileno(), self._readable)
        try:
            await self._call("open", (self._url,))
        except BaseException:
            await self.close()
            raise
        self.ready = True

    async def call(self, method: str, *args: Any) -> Any:
        """``store.jobs.<method>(*args)`` in the child; its result or its store error.

        A child that died makes every call in flight (and this one) raise
        :class:`StoreUnavailable`: the caller's retry starts a new one.
        """
        if method not in METHODS:
            raise ValueError(f"{method} is not served by the store process")
        return await self._call(method, args)

    async def _call(self, method: str, args: tuple[Any, ...]) -> Any:
        if self._sock is None or self._loop is None:
            raise StoreUnavailable("the store process is not running")
        self._ids += 1
        future: asyncio.Future[Any] = self._loop.create_future()
        self._pending[self._ids] = future
        data = _frame((self._ids, method, args))
        try:
            self._send(data)
        except OSError as exc:
            self._pending.pop(self._ids, None)
            self._lost(f"the store process is gone ({exc})")
            raise StoreUnavailable("the store process is gone") from exc
        return await future

    def _send(self, data: bytes) -> None:
        """Write a frame without ever blocking the loop: requests are small,
        so this is one send almost always; what the socket does not take
        waits, in order, for :meth:`_writable` (a child behind by a full
        buffer, or a stopped one)."""
        assert self._sock is not None and self._loop is not None
        if self._unsent:
            self._unsent += data
            return
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            self._unsent += memoryview(data)[sent:]
            self._loop.add_writer(self._sock.fileno(), self._writable)

    def _writable(self) -> None:
        assert self._sock is not None and self._loop is not None
        try:
            sent = self._sock.send(self._unsent)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(f"the store process is gone ({exc})")
            return
        del self._unsent[:sent]
        if not self._unsent:
            self._loop.remove_writer(self._sock.fileno())

    def _readable(self) -> None:
        assert self._sock is not None
        try:
            chunk = self._sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._lost("the store process exited")
            return
        self._buffer += chunk
        while len(self._buffer) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(self._buffer)
            if len(self._buffer) < _LENGTH.size + size:
                break
            payload = bytes(self._buffer[_LENGTH.size : _LENGTH.size + size])
            del self._buffer[: _LENGTH.size + size]
            ident, ok, value = pickle.loads(payload)
            future = self._pending.pop(ident, None)
            if future is None or future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(_rebuild(*value))

    def _lost(self, why: str) -> None:
        """The child is gone: fail what waits, forget the socket (the next start is fresh)."""
        if self._sock is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._sock.fileno())
                self._loop.remove_writer(self._sock.fileno())
            self._sock.close()
        self._unsent.clear()
        self._sock = None
        self.ready = False
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(StoreUnavailable(why))
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()

    async def close(self) -> None:
        """Close the socket (the child exits at EOF) and reap the child."""
        self._lost("the worker is stopping")
        proc, self._proc = self._proc, None
        if proc is not None:
            loop = asyncio.get_running_loop()
            try:
                await asyncio.wait_for(loop.run_in_executor(None, proc.wait), 10)
            except TimeoutError:
                proc.kill()
                await loop.run_in_executor(None, proc.wait)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def serve(sock: socket.socket) -> None:
    """The child's loop: open the store, then answer calls until EOF."""
    from stockade.store import Store, open_store

    store: Store | None = None
    try:
        while (head := _read_exactly(sock, _LENGTH.size)) is not None:
            body = _read_exactly(sock, _LENGTH.unpack(head)[0])
            if body is None:
                break
            ident, method, args = pickle.loads(body)
            try:
                if method == "open":
                    store = open_store(args[0], schema="check")
                    result: Any = None
                elif store is not None and method in METHODS:
                    result = getattr(store.jobs, method)(*args)
                else:
                    raise StoreError(f"the store process cannot {method!r} now")
            except StockadeError as exc:
                reply = _frame((ident, False, _error(exc)))
            except Exception as exc:  # a bug: reported to the worker, which logs it
                reply = _frame((ident, False, ("StoreError", f"{type(exc).__name__}: {exc}")))
            else:
                reply = _frame((ident, True, result))
            sock.sendall(reply)
    finally:
        if store is not None:
            store.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m stockade.engine.storeproc FD``: serve the socket at FD."""
    args = sys.argv[1:] if argv is None else argv
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)  # the worker says when: EOF
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:
        return 0  # the worker died before the guard was set
    sock = socket.socket(fileno=int(args[0]))
    try:
        serve(sock)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the worker is gone
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
