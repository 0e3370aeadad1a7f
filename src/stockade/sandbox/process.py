"""PopenHandle: a launched process tree, held by pidfd, pipes and a cgroup.

Shared by every backend that starts a host process (local, bwrap, chroot via
``unshare``, the OCI runtime's foreground mode): the backend builds the argv,
this class starts it as the leader of a new session born in the slot's
cgroup (``clone3`` where the host allows, see :mod:`stockade.sandbox.clonespawn`)
and supervises it.

Kill-all uses the strongest means available, in this order:

1. the slot's cgroup v2 (``cgroup.kill``): everything forked after the move
   is inside, ``setsid`` or not;
2. otherwise the process group, every descendant found under the main
   process, and — because orphans re-parent away from it — every process
   whose environment carries the job's ``STOCKADE_JOB_ID`` marker, repeated
   until a pass finds nothing alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from stockade.errors import LaunchError
from stockade.sandbox import clonespawn, fence, proctree, spoolshim
from stockade.sandbox import usage as accounting
from stockade.sandbox.base import ExitStatus, LaunchRequest, ProcessHandle
from stockade.sandbox.cgroup import SlotCgroup

__all__ = ["PopenHandle", "live_pids", "spawn"]

#: Main pids of handles not yet reaped; the orphan reaper leaves these alone.
live_pids: set[int] = set()


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
        self._cgroup = cgroup
        self._marker = marker
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
        #: A stop signal was sent: kill-all also sweeps the job's session.
        self._stopping = False
        live_pids.add(self.pid)

    @property
    def kill_method(self) -> str:
        """Which kill-all mechanism this handle uses (for logs and tests)."""
        return "cgroup" if self._cgroup is not None else "process-tree"

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
            live_pids.discard(self.pid)
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
        if self._cgroup is None or not self._exit_seen or self._cgroup.populated():
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
        if self._cgroup is not None:
            inside = self._cgroup.pids()
            self._cgroup.signal(signum)
            self._signal_session(signum, inside)
            return
        for pid in self._tree():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    def _signal_session(self, signum: int, done: Collection[int] = ()) -> int:
        """Signal the main process and the rest of its process group and session
        directly, but for the pids in ``done`` (signalled through the cgroup
        already: a second SIGTERM can mean "force" to a job's handler).

        The cgroup is not enough: a root job can write itself into another
        cgroup's ``cgroup.procs``. Its session still names it (every job is
        born a session leader); the main process is signalled through its
        pidfd, so a reused pid is never hit. Returns how many were signalled.
        """
        self._stopping = True
        pids = set(proctree.session_members(self.pid)) - set(done)
        pids.discard(os.getpid())
        main = self.pid in pids
        pids.discard(self.pid)
        if main:  # alive, so not reaped: its pid is still its own
            with contextlib.suppress(ProcessLookupError):
                if self._pidfd is not None:
                    signal.pidfd_send_signal(self._pidfd, signum)
                else:
                    os.kill(self.pid, signum)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
        return len(pids) + main

    def _tree(self) -> list[int]:
        """Fallback attribution: main pid, its process group, descendants, marked pids."""
        pids: set[int] = set()
        if self._popen.returncode is None:
            pids.add(self.pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, 0)
        pids.update(proctree.descendants(self.pid))
        pids.update(proctree.pids_with_marker(self._marker))
        pids.discard(os.getpid())
        return sorted(pids)

    def alive(self) -> bool:
        if self._released:
            return False
        if self._cgroup is not None:
            return self._cgroup.populated() or self._main_running()
        return bool(self._tree_alive())

    def _main_running(self) -> bool:
        """The main process is neither reaped nor a zombie (it may have left the cgroup)."""
        return self._popen.returncode is None and not self._exit_seen and _is_alive(self.pid)

    def _tree_alive(self) -> list[int]:
        return [p for p in self._tree() if _is_alive(p)]

    async def kill_all(self) -> int:
        if self._released:
            count = 0  # found empty at the exit; what is in the slot now is not ours
        elif self._cgroup is not None:
            count = await self._kill_cgroup(self._cgroup)
            if self._stopping or self._popen.returncode is None:
                # A job that left its cgroup is killed all the same (and a stop
                # must not wait for its main process forever).
                count += self._signal_session(signal.SIGKILL)
        else:
            count = await self._kill_tree()
        if self._popen.returncode is None:
            await self.wait()
        if proctree.is_subreaper():
            _reap_orphans(killed=count > 0)
        return count

    async def _kill_cgroup(self, cgroup: SlotCgroup) -> int:
        if not cgroup.populated():
            return 0  # the common case after a clean exit: one read, nothing to do
        victims = cgroup.pids()
        cgroup.kill()
        deadline = time.monotonic() + 5.0
        delay = 0.0002
        while cgroup.populated() and time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.01)
        return len(victims)

    async def _kill_tree(self) -> int:
        killed: set[int] = set()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for _ in range(200):
            pids = self._tree_alive()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            await asyncio.sleep(0.001)
        return len(killed)

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
        if self._cgroup is None and guard is not None:
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


#: Seconds between orphan sweeps after jobs that left nothing to kill.
REAP_INTERVAL = 1.0
_last_reap = [0.0]


def _reap_orphans(*, killed: bool) -> None:
    """Reap jobs' orphans that re-parented to this subreaper and exited.

    Right away when kill-all killed something (those are the zombies a kill
    makes); otherwise at most every :data:`REAP_INTERVAL`: an orphan that
    exited on its own before its job ended waits that long as a zombie, and
    a worker running short jobs saves a walk of ``/proc`` per job.
    """
    now = time.monotonic()
    if killed or now - _last_reap[0] >= REAP_INTERVAL:
        _last_reap[0] = now
        proctree.reap_orphans(live_pids)


def _is_alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return False
    return data[data.rfind(")") + 2 :].split(" ", 1)[0] not in ("Z", "X")
