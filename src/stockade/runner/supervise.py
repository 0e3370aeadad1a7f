"""Supervise a launched job: pump its pipes, enforce limits, stop it.

Pipes are read with ``loop.add_reader`` and plain ``os.read`` calls on
non-blocking fds (no StreamReader, no per-line awaits), so stdout and
stderr are drained concurrently and as fast as the job writes them, from
``WATCH_DELAY`` after the launch (a job that ends sooner is read once, at
its end).

Stopping is a ladder (docs/design.md, step 7): for a timeout or idle timeout
with a dump signal (``RunSpec.dumps``), that signal first and a short wait so
the job prints its stacks; then the stop signal to every process
of the job, the grace period (ended early once nothing is left), then
SIGKILL to everything that remains. A forced cancel (a
:class:`~stockade.runner.cancel.Stop` escalated) skips to the SIGKILL, even
in the middle of the grace. When the main process exits on its own,
whatever it left behind (daemons, background children) is killed too: after
:meth:`Supervisor.supervise` returns, no process of the job is alive. The
stop always runs to completion, shielded from the caller's cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stockade.reasons import Reason
from stockade.runner.cancel import Cancel, is_forced, is_set, watch, watch_force
from stockade.runner.spec import RunSpec
from stockade.runner.stream import LogWriter, StreamPipe
from stockade.sandbox.base import ExitStatus, ProcessHandle

__all__ = ["Report", "Supervisor", "signal_name"]

READ_SIZE = 1 << 20
#: How long a partial line waits for its newline before it is shown anyway.
PARTIAL_DELAY = 0.05
LOG_FLUSH = 0.2
#: After the job is gone, how long to wait for pipe EOF (a process that
#: escaped every kill mechanism could hold a pipe open).
EOF_WAIT = 2.0
#: How long after the launch the pipes are first watched. A job that ends
#: sooner is read once, at its end: no poller registrations for a short job
#: (four epoll calls and their bookkeeping). A longer job's output shows
#: this much later, and the pipes (1 MiB each) hold what it writes meanwhile.
WATCH_DELAY = 0.005


@dataclass
class Report:
    """How supervision ended."""

    status: ExitStatus
    reason: str | None
    kill_method: str | None
    killed: int
    grace_ended: float | None = None
    all_gone: float | None = None
    #: The dump signal sent before the stop (name, reason, stream offsets), if any.
    dump: dict[str, Any] | None = None


def signal_name(signum: int) -> str:
    """``SIGQUIT`` for 3; the number as text for one this system does not name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


class Supervisor:
    """Owns one launched job until nothing of it is left."""

    def __init__(
        self,
        spec: RunSpec,
        handle: ProcessHandle,
        out: StreamPipe,
        err: StreamPipe,
        stdin: bytes | None,
        cancel: Cancel,
        log: LogWriter | None,
        slot_free: Callable[[], None] | None = None,
    ) -> None:
        self.spec = spec
        #: Called the moment the job is over and its slot empty (see supervise).
        self.slot_free = slot_free
        self.handle = handle
        self.pipes = {handle.stdout: out, handle.stderr: err}
        self.stdin = stdin
        self.cancel = cancel
        self.log = log
        self.loop = asyncio.get_running_loop()
        self.stop_reason: str | None = None
        #: Resolved by the first of: the main process ended, a stop was
        #: requested, ``cancel`` was set (callbacks, not a task per source).
        self._woken: asyncio.Future[None] = self.loop.create_future()
        self.last_output = time.monotonic()
        self.eof: dict[int, asyncio.Future[None]] = {}
        self._partial: dict[int, asyncio.TimerHandle] = {}
        self._timers: list[asyncio.TimerHandle] = []
        self.killed = 0
        self.grace_ended: float | None = None
        self._stdin_fd: int | None = None
        self._watch_timer: asyncio.TimerHandle | None = None
        #: The pipes are in the poller (see ``WATCH_DELAY``).
        self._watching = False
        #: The main process has ended (the handle's exit callback said so).
        self._ended = False
        self._wait_task: asyncio.Future[ExitStatus] | None = None
        self.dump: dict[str, Any] | None = None

    def request_stop(self, reason: str) -> None:
        """Begin the stop ladder for ``reason`` (first reason wins)."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self._wake()

    def _exited(self) -> None:
        """The handle's exit callback: the main process has ended."""
        self._ended = True
        if self.stop_reason is None and self.slot_free is not None and self.handle.release_slot():
            slot_free, self.slot_free = self.slot_free, None
            slot_free()
        self._wake()

    def _wake(self, _: object = None) -> None:
        if not self._woken.done():
            self._woken.set_result(None)

    async def supervise(self) -> Report:
        """Run until the job and every process it started are gone.

        With ``slot_free`` given, the handle is asked, in the very callback
        that learns of the main process's end, to give up the slot
        (:meth:`~stockade.sandbox.base.ProcessHandle.release_slot`); if it
        does, ``slot_free`` is called there and then. The slot's next job
        starts without waiting for this one's pipes, reaping and result, or
        for whatever else the event loop has queued meanwhile.
        """
        # The end is learnt from callbacks, not from a task per source: the
        # handle's exit callback (else a task in wait()), and the cancel
        # future's done callback (an Event needs a task in its wait()).
        if not self.handle.add_exit_callback(self._exited):
            self._waiter().add_done_callback(self._wake)
        self._start_pumps()
        self._arm_timers()
        unwatch = watch(self.cancel, self._wake)
        try:
            await self._woken
            if is_set(self.cancel):
                self.request_stop(Reason.CANCELLED)
        except asyncio.CancelledError:
            self.request_stop(Reason.CANCELLED)
            await asyncio.shield(self._finish())
            raise
        finally:
            unwatch()
        if self.stop_reason is None:
            # The common end: the main process exited by itself. Clearing up
            # after it rarely has to wait, so it runs in this task; only if
            # the caller is cancelled meanwhile is the rest shielded.
            try:
                return await self._finish()
            except asyncio.CancelledError:
                await asyncio.shield(self._finish())
                raise
        return await asyncio.shield(self._finish())

    def _waiter(self) -> asyncio.Future[ExitStatus]:
        """A task in the handle's wait(), made when something must wait with a timeout."""
        if self._wait_task is None:
            self._wait_task = asyncio.ensure_future(self.handle.wait())
        return self._wait_task

    def _main_ended(self) -> bool:
        return self._ended or (self._wait_task is not None and self._wait_task.done())

    async def _finish(self) -> Report:
        for timer in self._timers:
            timer.cancel()
        if self.stop_reason is not None and not self._main_ended():
            await self._stop_ladder(self._waiter())
            self.killed += await self.handle.kill_all()
        status = await (self._wait_task or self.handle.wait())
        if self.grace_ended is None:
            self.grace_ended = time.monotonic()
        # Whatever the main process left behind (daemons, background jobs) goes too.
        self.killed += await self.handle.kill_all()
        all_gone = time.monotonic()
        self._close_stdin()
        self._read_now()
        await self._drain()
        if self.log is not None:
            self.log.flush()
        return Report(
            status=status,
            reason=self.stop_reason,
            kill_method=getattr(self.handle, "kill_method", None),
            killed=self.killed,
            grace_ended=self.grace_ended,
            all_gone=all_gone,
            dump=self.dump,
        )

    async def _stop_ladder(self, wait_task: asyncio.Future[ExitStatus]) -> None:
        """The stop signal, then the grace (ended early once nothing is left);
        a forced cancel skips the signal or cuts the grace short. The SIGKILL
        to what remains follows in :meth:`_finish`."""
        if is_forced(self.cancel):
            self.grace_ended = time.monotonic()
            return
        forced: asyncio.Future[None] = self.loop.create_future()

        def force(_: object) -> None:
            if not forced.done():
                forced.set_result(None)

        unwatch = watch_force(self.cancel, force)
        try:
            dump = self.spec.dumps.get(self.stop_reason or "")
            if dump is not None:
                self._send_dump(dump[0])
                await self._wait_gone(wait_task, forced, dump[1])
            if not forced.done() and self.handle.alive():
                self.handle.signal(self.spec.stop_signal)
                await self._wait_gone(wait_task, forced, self.spec.kill_grace)
        finally:
            unwatch()
        self.grace_ended = time.monotonic()

    def _send_dump(self, signum: int) -> None:
        """Send the dump signal to every process of the job and note where in
        each stream the dump begins."""
        name = signal_name(signum)
        self.dump = {
            "signal": name,
            "on": self.stop_reason,
            "offsets": {pipe.stream: pipe.stats.bytes_seen for pipe in self.pipes.values()},
        }
        self.handle.signal(signum)

    async def _wait_gone(
        self, wait_task: asyncio.Future[ExitStatus], forced: asyncio.Future[None], seconds: float
    ) -> None:
        """Up to ``seconds`` for every process of the job to end (or a force)."""
        deadline = time.monotonic() + seconds
        ended: list[asyncio.Future[Any]] = [wait_task, forced]
        await asyncio.wait(ended, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        delay = 0.001
        while not forced.done() and self.handle.alive() and time.monotonic() < deadline:
            left = max(deadline - time.monotonic(), 0)
            await asyncio.wait([forced], timeout=min(delay, left))
            delay = min(delay * 2, 0.05)

    # -- timers ---------------------------------------------------------------

    def _arm_timers(self) -> None:
        spec = self.spec
        if spec.timeout is not None:
            self._timers.append(
                self.loop.call_later(spec.timeout, self.request_stop, Reason.TIMEOUT)
            )
        if spec.idle_timeout is not None:
            self._timers.append(self.loop.call_later(spec.idle_timeout, self._check_idle))
        if self.log is not None:
            self._timers.append(self.loop.call_later(LOG_FLUSH, self._flush_log))

    def _check_idle(self) -> None:
        assert self.spec.idle_timeout is not None
        quiet = time.monotonic() - self.last_output
        if quiet >= self.spec.idle_timeout:
            self.request_stop(Reason.IDLE_TIMEOUT)
            return
        self._timers.append(self.loop.call_later(self.spec.idle_timeout - quiet, self._check_idle))

    def _flush_log(self) -> None:
        assert self.log is not None
        self.log.flush()
        self._timers.append(self.loop.call_later(LOG_FLUSH, self._flush_log))

    # -- pipes ----------------------------------------------------------------

    def _start_pumps(self) -> None:
        for fd in self.pipes:
            self.eof[fd] = self.loop.create_future()
        self._watch_timer = self.loop.call_later(WATCH_DELAY, self._watch_pipes)
        if self.handle.stdin is not None:
            self._start_stdin(self.handle.stdin, self.stdin or b"")

    def _watch_pipes(self) -> None:
        """Read the pipes as output arrives (from ``WATCH_DELAY`` after the start)."""
        self._watch_timer = None
        self._watching = True
        for fd in self.pipes:
            if not self.eof[fd].done():
                self.loop.add_reader(fd, self._readable, fd)

    def _read_now(self) -> None:
        """The job ended before its pipes were watched: read what it left and
        watch a pipe still open (a process escaped with it) until EOF."""
        if self._watch_timer is None:
            return
        self._watch_timer.cancel()
        self._watch_timer = None
        for fd in self.pipes:
            self._readable(fd)
        self._watch_pipes()

    def _readable(self, fd: int) -> None:
        pipe = self.pipes[fd]
        for _ in range(8):
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self._at_eof(fd)
                return
            self.last_output = time.monotonic()
            pipe.feed(data)
            if len(data) < READ_SIZE:
                break
        if pipe.pending and fd not in self._partial:
            self._partial[fd] = self.loop.call_later(PARTIAL_DELAY, self._flush_partial, fd)

    def _flush_partial(self, fd: int) -> None:
        self._partial.pop(fd, None)
        self.pipes[fd].flush_partial()

    def _at_eof(self, fd: int) -> None:
        if self._watching:
            self.loop.remove_reader(fd)
        timer = self._partial.pop(fd, None)
        if timer is not None:
            timer.cancel()
        self.pipes[fd].close()
        if not self.eof[fd].done():
            self.eof[fd].set_result(None)

    async def _drain(self) -> None:
        """Read both pipes to EOF; give up (closing our ends) after EOF_WAIT."""
        pending = [f for f in self.eof.values() if not f.done()]
        if pending:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*pending), EOF_WAIT)
        for fd, fut in self.eof.items():
            if not fut.done():
                self._at_eof(fd)

    def _start_stdin(self, fd: int, data: bytes) -> None:
        """Write the input without blocking, then close stdin (EPIPE is fine)."""
        os.set_blocking(fd, False)
        view = memoryview(data)
        self._stdin_fd = fd

        def writable() -> None:
            nonlocal view
            try:
                while view:
                    view = view[os.write(fd, view) :]
            except BlockingIOError:
                return
            except OSError:
                pass
            self._close_stdin()

        self.loop.add_writer(fd, writable)

    def _close_stdin(self) -> None:
        if self._stdin_fd is not None:
            self.loop.remove_writer(self._stdin_fd)
            self._stdin_fd = None
            self.handle.close_stdin()
