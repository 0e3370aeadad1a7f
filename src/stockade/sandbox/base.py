"""The Sandbox interface: where an attempt's processes live.

A sandbox has a lifecycle: :meth:`Sandbox.setup` once per slot,
:meth:`Sandbox.launch` many times, :meth:`Sandbox.cleanup` once. A launch
returns a :class:`ProcessHandle` that exposes the job's pipes, can signal the
job, and can kill *every* process that launch started (including ones that
called ``setsid`` or double-forked).

Backends share one contract for paths: the job's workspace directory is
visible inside the sandbox at the same absolute path as on the host, so the
runner can hand the job host paths in ``STOCKADE_WORKSPACE``,
``STOCKADE_OUTPUT``, ``STOCKADE_STATE`` and ``INPUT_FILE``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from stockade.errors import LaunchError
from stockade.sandbox.usage import Usage

__all__ = [
    "Availability",
    "ExitStatus",
    "LaunchRequest",
    "ProcessHandle",
    "Sandbox",
]


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run on this host, and if not, how to fix that."""

    usable: bool
    reason: str = ""
    fix: str = ""


@dataclass(frozen=True)
class ExitStatus:
    """How the job's main process ended: an exit code or a signal number."""

    code: int | None
    signal: int | None = None
    oom: bool = False

    @property
    def shell_code(self) -> int:
        """The status as a shell reports it: the code, or ``128 + signal``."""
        if self.signal is not None:
            return 128 + self.signal
        return self.code if self.code is not None else 0


@dataclass
class LaunchRequest:
    """What to start: an argv, its environment (complete, nothing inherited
    implicitly), its working directory and the job's workspace.

    ``stdin_pipe`` asks for a pipe whose write end the runner owns (for the
    ``json_stdin`` input format); otherwise stdin is ``/dev/null``.
    ``marker`` is the job id; backends may use it to attribute stray
    processes to the job.
    """

    argv: list[str]
    env: dict[str, str]
    cwd: str
    workspace: str
    marker: str
    stdin_pipe: bool = False
    #: Host directories the job must see read-write at the same path (the
    #: attempt's runtime files: input, output and state files).
    runtime_dirs: list[str] = field(default_factory=list)
    #: Host directories the job must not see even below a bound path
    #: (stockade's data directory): isolating backends cover them.
    hidden_dirs: list[str] = field(default_factory=list)
    #: stockade made ``workspace`` for this attempt alone (a task's
    #: ``workspace:``): backends that switch user give it to the job's user.
    #: Otherwise it is lent (see :mod:`stockade.sandbox.acl`).
    fresh_workspace: bool = False
    #: Reattach mode: the job's spool prefix (``DIR/JOB-ATTEMPT``); the job is
    #: then started by the spool shim (:mod:`stockade.sandbox.spoolshim`),
    #: which keeps its output and exit status there when the worker is gone.
    spool: str | None = None


class ProcessHandle(abc.ABC):
    """One launched job: its pipes, its exit, and power over all its processes.

    The handle owns the parent's ends of the pipes: ``stdout`` and ``stderr``
    are non-blocking read fds, ``stdin`` a write fd or ``None``. The runner
    reads them to EOF; :meth:`close` closes whatever is still open.
    """

    pid: int
    stdout: int
    stderr: int
    stdin: int | None

    @abc.abstractmethod
    async def wait(self) -> ExitStatus:
        """Wait for the job's main process to end and reap it."""

    @abc.abstractmethod
    def signal(self, signum: int) -> None:
        """Send ``signum`` to every process of the job; gone processes are not an error."""

    @abc.abstractmethod
    async def kill_all(self) -> int:
        """SIGKILL every process of the job, wait until none is left and reap
        what was ours to reap. Returns how many processes were killed."""

    @abc.abstractmethod
    def alive(self) -> bool:
        """Whether any process of the job is still alive."""

    @abc.abstractmethod
    def close_stdin(self) -> None:
        """Close the write end of the job's stdin (the job then sees EOF). Idempotent."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release fds and kernel objects the handle holds. Idempotent."""

    def add_exit_callback(self, callback: Callable[[], None]) -> bool:
        """Have ``callback`` called from the event loop the moment the main
        process is known to have ended (at once, if it has): the runner then
        needs no task blocked in :meth:`wait` to learn of the end, and
        :meth:`wait` returns without waiting. ``False``: this handle cannot,
        nothing is called."""
        return False

    def release_slot(self) -> bool:
        """After the main process ended: if nothing of the job is left in the
        slot and nothing of the slot's is left to do, stop using the slot
        (:meth:`signal` and :meth:`kill_all` then touch nothing of it) and
        return ``True``: the slot may take its next job while this one's
        pipes are drained and its result is made. ``False`` where the handle
        cannot be sure (no cgroup to ask) or still needs the slot (teardown,
        OOM attribution)."""
        return False

    def usage(self) -> Usage | None:
        """What the job used (:mod:`stockade.sandbox.usage`), once :meth:`wait`
        has returned; ``None`` where nothing was measured."""
        return None

    def launch_error(self) -> LaunchError | None:
        """Why the job never started, when that showed only after :meth:`Sandbox.launch`
        returned: a spawn that does not wait for the child's exec learns that
        the program could not be run when the child exits (code 127). Known
        once :meth:`wait` has returned; ``None`` for a job that did start."""
        return None


class Sandbox(abc.ABC):
    """A backend instance bound to one slot."""

    name: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def availability(cls) -> Availability:
        """Whether this backend can run on this host."""

    @abc.abstractmethod
    def setup(self) -> None:
        """Prepare the slot's environment (once, before any launch)."""

    @abc.abstractmethod
    def launch(self, request: LaunchRequest) -> ProcessHandle:
        """Start one process tree; raise :class:`~stockade.errors.LaunchError` if it cannot."""

    @abc.abstractmethod
    def cleanup(self) -> None:
        """Tear down what :meth:`setup` made; raise
        :class:`~stockade.errors.CleanupError` naming anything left behind."""
