"""Spawning a job straight into its slot cgroup (``clone3`` with ``CLONE_INTO_CGROUP``).

The portable spawn (:meth:`~stockade.sandbox.cgroup.SlotCgroup.spawning`)
moves the stockade process into the slot cgroup for the fork and back:
two cgroup migrations per job on the event loop's thread, each of which
can wait for an RCU grace period, plus ``subprocess.Popen``'s own Python
work. The small C extension :mod:`stockade.sandbox._clonespawn` creates the
child inside the cgroup instead, vfork-style, and returns its pidfd with
it: on the development VM a spawn of ``/bin/true`` took 0.15 ms of the
parent's CPU instead of 0.6 ms.

On x86-64 the extension's ``spawn_async`` is used: the caller does not wait
for the child's exec either (see the C file for how the child stays off the
parent's memory). A vfork-style spawn suspends the event loop until the
exec, and on a busy machine the new child first waits for a CPU: a worker
running short jobs spent a third of its loop's time there. The price is
that a program which cannot be run is known only when its child exits
(code 127): :attr:`ClonedProcess.exec_error`, which the handle reports as
its :meth:`~stockade.sandbox.base.ProcessHandle.launch_error`.

The extension is built at install time when a C compiler is there. Where
it is missing, where ``clone3`` is refused (kernel before 5.7, a seccomp
filter, a cgroup that does not take processes), or with
``STOCKADE_CLONE3=0`` in the environment, :func:`spawn` returns ``None`` and
the caller uses the portable path: same guarantees, slower.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from stockade.sandbox.base import LaunchRequest
from stockade.sandbox.cgroup import SlotCgroup

__all__ = ["ClonedProcess", "available", "spawn"]

log = logging.getLogger("stockade.sandbox")


def _load() -> Any:
    if os.environ.get("STOCKADE_CLONE3", "1") == "0":
        return None
    try:
        from stockade.sandbox import _clonespawn  # type: ignore[attr-defined]
    except ImportError:
        return None
    # Built for a CPU without the inline system call: the module has no spawn.
    return _clonespawn if hasattr(_clonespawn, "spawn") else None


class _State:
    """The extension, and whether ``clone3`` was refused in this process."""

    native: Any = _load()
    refused = False
    #: ``spawn_async`` is there (x86-64): spawns do not wait for the exec.
    asynchronous = hasattr(native, "spawn_async")


def available() -> bool:
    """Whether spawns go through ``clone3`` in this process (so far)."""
    return _State.native is not None and not _State.refused


class PipeEnd:
    """Our end of one of the job's pipes: the ``fileno``/``close`` of a file
    object, without building one (a handle uses only these two)."""

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        """Close the fd (once; later calls do nothing)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


class ClonedProcess:
    """The parts of :class:`subprocess.Popen` a process handle uses.

    The extension made the pipes: the read ends are already non-blocking
    and widened, so the handle is told not to do it again.
    """

    def __init__(
        self, pid: int, pidfd: int, stdin: int, stdout: int, stderr: int, token: int | None = None
    ) -> None:
        #: The memory a child of ``spawn_async`` runs on until its exec:
        #: released once the child is reaped, never before.
        self._token = token
        #: Why the program could not be run (``spawn_async`` learns it only
        #: once the child has exited); ``None`` if it ran.
        self.exec_error: OSError | None = None
        self.pid = pid
        self.pidfd = pidfd
        self.stdin: PipeEnd | None = PipeEnd(stdin) if stdin >= 0 else None
        self.stdout: PipeEnd | None = PipeEnd(stdout)
        self.stderr: PipeEnd | None = PipeEnd(stderr)
        self.returncode: int | None = None

    def wait(self) -> int:
        """Reap the process (blocking); its exit code, ``-N`` if killed by signal N."""
        if self.returncode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:  # reaped elsewhere: what Popen reports too
                self.returncode = 0
            else:
                self.returncode = os.waitstatus_to_exitcode(status)
        if self._token is not None:  # also when the caller reaped it (wait4)
            token, self._token = self._token, None
            failed = _State.native.release(token)
            if failed is not None:
                _, err = failed
                self.exec_error = OSError(err, os.strerror(err))
        return self.returncode


def spawn(
    argv: list[str],
    request: LaunchRequest,
    cgroup: SlotCgroup,
    pass_fds: tuple[int, ...],
    pipe_size: int = 0,
) -> ClonedProcess | None:
    """Start ``argv`` as a new session leader born in ``cgroup``.

    ``None`` when this path is not available here (the caller falls back).
    A program that cannot be run or a working directory that cannot be
    entered raises :class:`OSError` (as ``subprocess.Popen`` would) or, with
    ``spawn_async``, is the child's :attr:`~ClonedProcess.exec_error` once it
    has been reaped. :class:`ValueError` for an environment variable that
    cannot be passed; :class:`OSError` for pipes that cannot be made.
    """
    if not available():
        return None
    if cgroup.killed and not cgroup.renew():
        return None  # something of the killed job is still inside: the portable path
    env = _environ(request.env)
    paths = _candidates(argv[0], request.env)
    args = [os.fsencode(a) for a in argv]
    cwd = os.fsencode(request.cwd) if request.cwd else None
    cgroup_fd = cgroup.fd()  # out of the try: no fd left is this launch's error, not a refusal
    try:
        if _State.asynchronous:
            return ClonedProcess(*_State.native.spawn_async(
                paths, args, env, cwd, cgroup_fd, request.stdin_pipe, tuple(pass_fds), pipe_size
            ))  # fmt: skip
        pid, pidfd, stdin_w, out_r, err_r = _State.native.spawn(
            paths, args, env, cwd, cgroup_fd, request.stdin_pipe, tuple(pass_fds), pipe_size
        )
    except OSError as exc:
        if getattr(exc, "child_stage", None) is not None:
            raise  # the job's own fault (no program, bad cwd): not a reason to fall back
        _State.refused = True
        log.info("clone3 into the slot cgroup refused (%s); using the portable spawn", exc)
        return None
    return ClonedProcess(pid, pidfd, stdin_w, out_r, err_r)


#: ``NAME=value`` entries already encoded: a worker's jobs inherit the same
#: environment, so each job's encoding is mostly dictionary hits.
_encoded: dict[tuple[str, str], bytes] = {}
_ENCODED_MAX = 4096


def _environ(env: dict[str, str]) -> list[bytes]:
    if len(_encoded) > _ENCODED_MAX:
        _encoded.clear()
    out = []
    for item in env.items():
        entry = _encoded.get(item)
        if entry is None:
            entry = _encoded[item] = _entry(*item)
        out.append(entry)
    return out


def _entry(name: str, value: str) -> bytes:
    """``NAME=value`` as the kernel takes it; ValueError for what cannot be passed."""
    key = os.fsencode(name)
    if not key or b"=" in key or b"\0" in key:
        raise ValueError(f"illegal environment variable name {name!r}")
    val = os.fsencode(value)
    if b"\0" in val:
        raise ValueError(f"environment variable {name!r} holds a NUL byte")
    return key + b"=" + val


def _candidates(program: str, env: dict[str, str]) -> list[bytes]:
    """Where to look for ``program``: itself if it has a slash, else each PATH entry."""
    name = os.fsencode(program)
    if b"/" in name:
        return [name]
    return [os.path.join(os.fsencode(d), name) for d in os.get_exec_path(env)]
