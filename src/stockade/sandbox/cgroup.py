"""Slot cgroups: the strongest kill-all this host offers.

One cgroup v2 directory per concurrency slot, created at sandbox setup and
reused from job to job, so creating a cgroup is not a per-job cost.

A job must be *born* inside its cgroup: moving it in after spawn races with
its first ``fork`` (a shell forks its background children within a
millisecond, before the parent gets to write ``cgroup.procs``). So for the
instant of the spawn, the stockade process moves itself into the slot
cgroup, forks and execs the job there, and moves back (:meth:`SlotCgroup.
spawning`). Spawns are synchronous on the event-loop thread, so they never
overlap. Where it can, stockade skips the two moves and has the kernel create
the child inside the cgroup (``clone3``, :mod:`stockade.sandbox.clonespawn`):
each move can wait for an RCU grace period. Everything the job
forks is then inside, ``setsid`` and double-forked daemons included, and
``cgroup.kill`` ends them all in one write.

Where the host mounts cgroup v2 only as the "unified" half of a hybrid
layout (v1 controllers elsewhere), ``cgroup.kill`` and ``cgroup.freeze``
still work there; that is all this module needs. Resource limits (v1 or v2
controllers) are the sandbox profiles' business, not this module's.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from stockade.sandbox import fence
from stockade.sandbox.fence import rmdir

__all__ = ["SlotCgroup", "cgroup2_root", "hold_by", "owner_alive", "owner_tag"]

_ROOT_NAME = "stockade"


@functools.cache
def cgroup2_root() -> Path | None:
    """The mount point of the cgroup v2 hierarchy, or ``None`` if there is none.

    Read once per process: the mount table is read on every spawn otherwise.
    """
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "cgroup2":
                    return Path(left.split(" ")[4])
    except OSError:
        return None
    return None


#: The process named as the owner of this process's slot cgroups, when not
#: this one (see :func:`hold_by`).
_holder: list[int] = []


def hold_by(pid: int) -> None:
    """Name process ``pid`` as the owner of the slot cgroups made from now on.

    In reattach mode it is the worker's fence, which outlives the worker:
    the start-up sweep of any stockade process on this host kills the slot
    cgroups of dead owners only, so it leaves those of a job that waits for
    its worker's restart alone while the fence that bounds it lives."""
    _holder[:] = [pid]


def owner_tag(pid: int | None = None) -> str:
    """``PID-START`` of this process (or ``pid``): how a slot cgroup's name says
    which process owns it, so that a reused pid is never taken for its owner."""
    pid = pid or os.getpid()
    return f"{pid}-{_start_time(pid)}"


@functools.cache
def _start_time(pid: int) -> int:
    from stockade.sandbox.proctree import start_time

    return start_time(pid) or 0


def owner_alive(name: str) -> bool:
    """Whether the process that made slot cgroup ``name`` (``PID-START-LABEL``,
    or the older ``PID-LABEL``) is still running."""
    pid, _, rest = name.partition("-")
    if not pid.isdigit():
        return True  # not a slot cgroup of ours: leave it alone
    from stockade.sandbox.proctree import start_time

    started = start_time(int(pid))
    recorded = rest.split("-", 1)[0]
    if started is None:
        return False
    return not recorded.isdigit() or int(recorded) == started


class SlotCgroup:
    """A cgroup v2 directory owned by one slot of this process.

    Created by :meth:`create` (returns ``None`` when the host offers no
    writable cgroup v2 tree), removed by :meth:`remove`.
    """

    def __init__(self, path: Path) -> None:
        self._use(path)
        self.has_kill = self._kill.exists()
        self._generation = 0
        #: ``cgroup.kill`` was written since this directory was made.
        self.killed = False

    def _use(self, path: Path) -> None:
        self.path = path
        self._procs = str(path / "cgroup.procs")
        self._events = str(path / "cgroup.events")
        self._kill = path / "cgroup.kill"
        self._fd: int | None = None
        self._events_fd: int | None = None

    def renew(self) -> bool:
        """Swap in a fresh, empty directory for this slot; False if the old one
        is not empty yet (then nothing changes).

        For :mod:`~stockade.sandbox.clonespawn`: on the kernels tried (up to
        6.18), once ``cgroup.kill`` has been written to a cgroup, every child
        ``clone3`` creates inside it is killed at birth (the kernel compares
        the kill count of the *parent's* cgroup with the destination's). A
        directory that was never killed does not have that count.
        """
        if self.populated():
            return False
        self._generation += 1
        old, fd, events_fd = self.path, self._fd, self._events_fd
        fresh = old.parent / f"{old.name.split('.', 1)[0]}.{self._generation}"
        fresh.mkdir(exist_ok=True)
        self._use(fresh)
        self.killed = False
        self._close_fds(fd, events_fd)
        _removed(old)
        return True

    def fd(self) -> int:
        """A directory fd of the cgroup (opened once), for ``clone3(CLONE_INTO_CGROUP)``."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._fd

    @classmethod
    def create(cls, label: str) -> SlotCgroup | None:
        """Make ``<cgroup2>/stockade/<pid>-<start>-<label>``; ``None`` if not possible here."""
        root = cgroup2_root()
        if root is None:
            return None
        base = root / _ROOT_NAME
        try:
            base.mkdir(exist_ok=True)
            _prune_stale(base)
            path = base / f"{owner_tag(_holder[0] if _holder else None)}-{label}"
            path.mkdir(exist_ok=True)
        except OSError:
            return None
        return cls(path)

    @contextlib.contextmanager
    def spawning(self) -> Iterator[bool]:
        """Hold this process inside the slot cgroup while a child is forked.

        Yields whether the move worked; if it did not (no permission to move
        ourselves), the caller falls back to :meth:`join` after the spawn.
        """
        home = _own_cgroup()
        try:
            self._write_procs(self._procs, "0")
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            if home is not None:
                self._write_procs(home, "0")

    @staticmethod
    def _write_procs(path: str, pid: str) -> None:
        with open(path, "w", encoding="ascii") as fh:
            fh.write(pid)

    def join(self, pid: int) -> bool:
        """Move ``pid`` (and its threads) into this cgroup. False if it is gone."""
        try:
            with open(self._procs, "w", encoding="ascii") as fh:
                fh.write(str(pid))
        except ProcessLookupError:
            return False
        except OSError as exc:
            if exc.errno == errno.ESRCH:
                return False
            raise
        return True

    def pids(self) -> list[int]:
        """The pids now in the cgroup."""
        try:
            with open(self._procs, encoding="ascii") as fh:
                return [int(x) for x in fh.read().split()]
        except OSError:
            return []

    def populated(self) -> bool:
        """Whether any live process is in the cgroup (``cgroup.events``).

        Asked after every job: the file stays open and is re-read with
        ``pread`` at offset 0 (kernfs regenerates it on each read), a
        microsecond instead of the twenty an open, read and close cost.
        """
        try:
            if self._events_fd is None:
                self._events_fd = os.open(self._events, os.O_RDONLY | os.O_CLOEXEC)
            return b"populated 1" in os.pread(self._events_fd, 256, 0)
        except OSError:
            return bool(self.pids())

    def signal(self, signum: int) -> None:
        """Send ``signum`` to every process in the cgroup (v2 has no cgroup.signal)."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def kill(self) -> None:
        """SIGKILL everything in the cgroup: ``cgroup.kill`` where the kernel has
        it (5.14+), else freeze-free repeated signalling of ``cgroup.procs``."""
        if self.has_kill:
            self.killed = True
            self._kill.write_text("1", encoding="ascii")
            return
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Kill anything left and remove the directory."""
        if self.populated():
            self.kill()
            deadline = time.monotonic() + 2.0
            while self.populated() and time.monotonic() < deadline:
                time.sleep(0.001)
        self._close_fds(self._fd, self._events_fd)
        self._fd = self._events_fd = None
        _removed(self.path)

    @staticmethod
    def _close_fds(*fds: int | None) -> None:
        for fd in fds:
            if fd is not None:
                os.close(fd)


def _removed(path: Path) -> None:
    """Remove an emptied slot cgroup; the fence forgets it."""
    rmdir(path)
    guard = fence.active()
    if guard is not None:
        guard.removed(str(path))


_home: list[str | None] = []


def _own_cgroup() -> str | None:
    """The ``cgroup.procs`` file of the v2 cgroup this process lives in.

    Read the first time (never from inside a slot cgroup: :meth:`SlotCgroup.
    spawning` asks before it moves) and remembered, so a spawn costs no
    ``/proc`` read; a process moved elsewhere by someone else is moved back
    to where stockade found it.
    """
    if not _home:
        _home.append(_read_own_cgroup())
    return _home[0]


def _read_own_cgroup() -> str | None:
    root = cgroup2_root()
    if root is None:
        return None
    try:
        with open("/proc/self/cgroup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("0::"):
                    rel = line[3:].strip().lstrip("/")
                    return str(root / rel / "cgroup.procs")
    except OSError:
        return None
    return None


def _prune_stale(base: Path) -> None:
    """Remove empty slot cgroups left by stockade processes that died."""
    for entry in base.iterdir():
        if owner_alive(entry.name):
            continue
        with contextlib.suppress(OSError):
            entry.rmdir()
