"""PopenHandle: a launched process tree, held by pidfd, pipes and a cgroup.

Shared by every backend that starts a host process (local, bwrap, chroot via
``unshare``, the OCI runtime's foreground mode): the backend builds the argv,
this class starts it as the leader of a new session born in the slot's
cgroup (``clone3`` where the host allows, see :mod:`stockade.sandbox.clonespawn`)
and supervises it.

Kill-all uses the strongest means available, chosen once per launch
(:mod:`stockade.sandbox.killall`): the slot's cgroup v2 where there is one,
otherwise the process tree found by group, descent and the job's
``STOCKADE_JOB_ID`` marker.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from typing import Protocol

from stockade.errors import LaunchError
from stockade.sandbox import clonespawn, fence, proctree, spoolshim
from stockade.sandbox import usage as accounting
from stockade.sandbox.base import ExitStatus, LaunchRequest, ProcessHandle
from stockade.sandbox.cgroup import SlotCgroup
from stockade.sandbox.killall import CgroupKill, KillAll, TreeKill

__all__ = ["REAPER", "PopenHandle", "spawn"]

#: The orphan reaper of this process's job handles (this process is the
#: subreaper of every job it launches: one reaper for all of them).
REAPER = proctree.OrphanReaper()


def spawn(
    argv: list[str],
    request: LaunchRequest,
    cgroup: SlotCgroup | None,
    pass_fds: tuple[int, ...] = (),
    *,
    contexts: Sequence[contextlib.AbstractContextManager[object]] = (),
) -> PopenHandle:
    """Start ``argv`` for ``request`` and return its handle.

    The child gets exactly ``request.env`` (nothing inherited implicitly),
    new session, close-on-exec for everything but its three pipes and
    ``pass_fds``. A failure to start is a :class:`LaunchError` naming the
    program and the reason.

    ``contexts`` are entered around the fork, outside the slot cgroup's:
    backends use them to have the job born in their limit cgroups or in a
    new pid namespace (see :mod:`stockade.sandbox.limits`).
    """
    if request.spool is not None:
        argv = [*spoolshim.launcher(request.spool), *argv]
    guard = fence.active()
    if guard is not None and cgroup is not None:
        guard.born_in(request.marker, str(cgroup.path))  # before: it may die at once
        if request.spool is not None:
            guard.keep(request.marker)  # reattachable: it outlives its worker
    if cgroup is not None and not contexts:
        try:
            child = clonespawn.spawn(argv, request, cgroup, pass_fds, PIPE_SIZE)
        except OSError as exc:
            raise _launch_error(argv, request, exc) from exc
        if child is not None:
            cloned = child

            def failed() -> LaunchError | None:
                exc = cloned.exec_error
                return _launch_error(argv, request, exc) if exc is not None else None

            return PopenHandle(
                child, cgroup, request.marker, pidfd=child.pidfd, failed=failed, pipes_ready=True
            )
    with contextlib.ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context)
        with cgroup.spawning() if cgroup is not None else contextlib.nullcontext(False) as inside:
            popen = _popen(argv, request, pass_fds)
    if cgroup is not None and not inside:
        cgroup.join(popen.pid)
    elif cgroup is None and guard is not None:
        guard.tree(request.marker, popen.pid)
    return PopenHandle(popen, cgroup, request.marker)


def _popen(
    argv: list[str], request: LaunchRequest, pass_fds: tuple[int, ...]
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if request.stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=request.env,
            cwd=request.cwd,
            start_new_session=True,
            close_fds=True,
            pass_fds=pass_fds,
            bufsize=0,
        )
    except OSError as exc:
        raise _launch_error(argv, request, exc) from exc


def _launch_error(argv: list[str], request: LaunchRequest, exc: OSError) -> LaunchError:
    """The one-line error for a program that could not be started."""
    if isinstance(exc, FileNotFoundError):
        return LaunchError(f"cannot run {argv[0]!r}: no such file or command")
    if isinstance(exc, PermissionError):
        return LaunchError(f"cannot run {argv[0]!r}: permission denied")
    if isinstance(exc, NotADirectoryError):
        return LaunchError(f"cannot run {argv[0]!r} in {request.cwd!r}: not a directory")
    return LaunchError(f"cannot run {argv[0]!r}: {exc.strerror or exc}")


class Pipe(Protocol):
    """One of the job's pipes, our end: a file object or a
    :class:`~stockade.sandbox.clonespawn.PipeEnd`."""

    def fileno(self) -> int: ...

    def close(self) -> None: ...


class Child(Protocol):
    """What a handle needs of its main process: ``subprocess.Popen`` or a
    :class:`~stockade.sandbox.clonespawn.ClonedProcess`."""

    pid: int
    returncode: int | None

    @property
    def stdin(self) -> Pipe | None: ...

    @property
    def stdout(self) -> Pipe | None: ...

    @property
    def stderr(self) -> Pipe | None: ...

    def wait(self) -> int: ...


class PopenHandle(ProcessHandle):
    """A process tree started by :func:`spawn`.

    ``pidfd``: one the spawn already has (else one is opened). ``failed``
    says, once the main process is reaped, whether it never ran its program
    (a spawn that does not wait for the exec). ``pipes_ready``: the read
    ends are non-blocking and widened already.
    """

    def __init__(
        self,
        popen: Child,
        cgroup: SlotCgroup | None,
        marker: str,
        *,
        pidfd: int | None = None,
        failed: Callable[[], LaunchError | None] | None = None,
        pipes_ready: bool = False,
    ):
        self._popen = popen
        self._failed = failed
        self._marker = marker
        self._tree_only = cgroup is None
        self.pid = popen.pid
        assert popen.stdout is not None and popen.stderr is not None
        self.stdout = popen.stdout.fileno()
        self.stderr = popen.stderr.fileno()
        if not pipes_ready:  # the C spawn made them non-blocking and wide already
            for fd in (self.stdout, self.stderr):
                os.set_blocking(fd, False)
                _widen_pipe(fd)
        self.stdin = popen.stdin.fileno() if popen.stdin is not None else None
        self._pidfd: int | None = pidfd if pidfd is not None else os.pidfd_open(self.pid)
        self._status: ExitStatus | None = None
        self._usage: accounting.Usage | None = None
        #: Futures of the coroutines in wait(); None until the pidfd is watched.
        self._waiters: list[asyncio.Future[None]] | None = None
        self._exit_seen = False
        self._exit_callbacks: list[Callable[[], None]] = []
        #: The slot was given up (release_slot): nothing of it is touched again.
        self._released = False
        self._kill: KillAll = TreeKill(self, marker) if cgroup is None else CgroupKill(cgroup, self)
        REAPER.live.add(self.pid)

    @property
    def kill_method(self) -> str:
        """Which kill-all mechanism this handle uses (for logs and tests)."""
        return self._kill.name

    def unreaped(self) -> bool:
        return self._popen.returncode is None

    def exited(self) -> bool:
        return self._exit_seen

    def send(self, signum: int) -> None:
        if self._pidfd is not None:
            signal.pidfd_send_signal(self._pidfd, signum)
        else:
            os.kill(self.pid, signum)

    def launch_error(self) -> LaunchError | None:
        if self._failed is None or self._status is None:
            return None
        return self._failed()

    async def wait(self) -> ExitStatus:
        if self._status is not None:
            return self._status
        if self._popen.returncode is None and self._pidfd is not None and not self._exit_seen:
            loop = asyncio.get_running_loop()
            waiters = self._watch(loop)
            # A future per waiter: a waiter cancelled leaves the others waiting
            # (what a shield of one shared future gave, at a quarter of its cost).
            waiter: asyncio.Future[None] = loop.create_future()
            waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done() or waiter.cancelled():
                    with contextlib.suppress(ValueError):
                        waiters.remove(waiter)
        if self._status is None:
            self._reap()
            code = self._popen.wait()
            REAPER.live.discard(self.pid)
            self._status = (
                ExitStatus(code=None, signal=-code) if code < 0 else ExitStatus(code=code)
            )
        return self._status

    def _reap(self) -> None:
        """Reap the main process with ``wait4`` for its resource use; the
        child object then only reports the code (``returncode`` set)."""
        if self._popen.returncode is not None or not accounting.measuring():
            return
        try:
            _, status, rusage = os.wait4(self.pid, 0)
        except ChildProcessError:
            return  # reaped elsewhere: the child object reports what it can
        self._popen.returncode = os.waitstatus_to_exitcode(status)
        self._usage = accounting.Usage.from_rusage(rusage)

    def usage(self) -> accounting.Usage | None:
        return self._usage

    def _watch(self, loop: asyncio.AbstractEventLoop) -> list[asyncio.Future[None]]:
        """Watch the pidfd for the exit (once); the list of waiters' futures."""
        if self._waiters is None:
            assert self._pidfd is not None
            self._waiters = []
            loop.add_reader(self._pidfd, self._on_exit)
        return self._waiters

    def add_exit_callback(self, callback: Callable[[], None]) -> bool:
        if self._pidfd is None:
            return False
        loop = asyncio.get_running_loop()
        if self._exit_seen or self._popen.returncode is not None:
            loop.call_soon(callback)
            return True
        self._exit_callbacks.append(callback)
        self._watch(loop)
        return True

    def release_slot(self) -> bool:
        if self._released:
            return True
        if not self._kill.empty_after_exit():
            return False
        self._released = True
        return True

    def _on_exit(self) -> None:
        """The pidfd became readable: the main process ended."""
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
        self._exit_seen = True
        callbacks, self._exit_callbacks = self._exit_callbacks, []
        for callback in callbacks:
            callback()
        waiters, self._waiters = self._waiters or [], []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def signal(self, signum: int) -> None:
        if self._released:
            return  # the slot runs another job now; this one's processes are gone
        self._kill.signal(signum)

    def alive(self) -> bool:
        if self._released:
            return False
        return self._kill.alive()

    async def kill_all(self) -> int:
        if self._released:
            count = 0  # found empty at the exit; what is in the slot now is not ours
        else:
            count = await self._kill.kill()
        if self._popen.returncode is None:
            await self.wait()
        if proctree.is_subreaper():
            REAPER.after_kill(killed=count > 0)
        return count

    def close_stdin(self) -> None:
        if self._popen.stdin is not None:
            with contextlib.suppress(OSError):
                self._popen.stdin.close()

    def close(self) -> None:
        for stream in (self._popen.stdin, self._popen.stdout, self._popen.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self._pidfd is not None:
            if self._waiters is not None and not self._exit_seen:
                with contextlib.suppress(RuntimeError):
                    asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        guard = fence.active()
        if self._tree_only and guard is not None:
            guard.ended(self._marker)


#: Pipe capacity asked for the job's stdout and stderr: a fast writer then
#: fills up to 1 MiB between two reads, so the runner works on big chunks
#: instead of paying its per-chunk costs every 64 KiB (the Linux default).
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031


def _widen_pipe(fd: int) -> None:
    """Grow a pipe to :data:`PIPE_SIZE`; keep the default if the host refuses."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)
