"""Kill-all strategies: how a launched job's whole process tree is signalled,
checked and killed, chosen once per launch.

* :class:`CgroupKill`: the slot's cgroup v2 holds everything the job forked
  (``setsid`` or not); ``cgroup.kill`` ends it at once. The main process and
  its session are signalled directly as well: a root job can write itself
  into another cgroup's ``cgroup.procs``, but its session still names it
  (every job is born a session leader).
* :class:`TreeKill`: no cgroup (an unprivileged host): the process group,
  every descendant of the main process and, because orphans re-parent away
  from it, every process whose environment carries the job's marker,
  repeated until a pass finds nothing alive.

A strategy sees the main process only through :class:`MainProcess` (its pid,
whether it still runs, a signal sent through its pidfd), so it never hits a
reused pid and never reaps.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Collection
from typing import Protocol

from stockade.sandbox import proctree
from stockade.sandbox.cgroup import SlotCgroup

__all__ = ["CgroupKill", "KillAll", "MainProcess", "TreeKill", "is_alive"]

#: How long a cgroup kill waits for the cgroup to empty before it gives up.
CGROUP_KILL_WAIT = 5.0
#: Passes of a process-tree kill before it gives up on what survives.
TREE_PASSES = 200


class MainProcess(Protocol):
    """What a strategy may know of and do to the job's main process."""

    pid: int

    def unreaped(self) -> bool:
        """Not reaped yet (its pid is still its own)."""

    def exited(self) -> bool:
        """Its exit was seen (it may still be a zombie)."""

    def send(self, signum: int) -> None:
        """Signal it through its pidfd (ProcessLookupError once it is gone)."""


class KillAll(abc.ABC):
    """Signal, check and kill everything one launched job started."""

    #: The mechanism's name, for logs and tests.
    name: str

    @abc.abstractmethod
    def signal(self, signum: int) -> None:
        """Send ``signum`` to every process of the job."""

    @abc.abstractmethod
    def alive(self) -> bool:
        """Whether any process of the job is alive."""

    @abc.abstractmethod
    async def kill(self) -> int:
        """SIGKILL every process of the job and wait for them to go; how many."""

    def empty_after_exit(self) -> bool:
        """Whether, the main process having exited, nothing of the job is left
        that could be told apart from the next job's processes (the slot may
        then be given up before :meth:`kill`)."""
        return False


class CgroupKill(KillAll):
    """Kill-all through the slot's cgroup, plus the job's session directly."""

    name = "cgroup"

    def __init__(self, cgroup: SlotCgroup, main: MainProcess) -> None:
        self.cgroup = cgroup
        self.main = main
        #: A stop signal was sent: :meth:`kill` also sweeps the job's session.
        self.stopping = False

    def signal(self, signum: int) -> None:
        inside = self.cgroup.pids()
        self.cgroup.signal(signum)
        self._signal_session(signum, inside)

    def _signal_session(self, signum: int, done: Collection[int] = ()) -> int:
        """Signal the main process and the rest of its session, but for the
        pids in ``done`` (signalled through the cgroup already: a second
        SIGTERM can mean "force" to a job's handler); how many."""
        self.stopping = True
        pids = set(proctree.session_members(self.main.pid)) - set(done)
        pids.discard(os.getpid())
        main = self.main.pid in pids
        pids.discard(self.main.pid)
        if main:  # alive, so not reaped: its pid is still its own
            with contextlib.suppress(ProcessLookupError):
                self.main.send(signum)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
        return len(pids) + main

    def alive(self) -> bool:
        main = self.main.unreaped() and not self.main.exited() and is_alive(self.main.pid)
        return self.cgroup.populated() or main

    def empty_after_exit(self) -> bool:
        return self.main.exited() and not self.cgroup.populated()

    async def kill(self) -> int:
        count = await self._kill_cgroup()
        if self.stopping or self.main.unreaped():
            # A job that left its cgroup is killed all the same (and a stop
            # must not wait for its main process forever).
            count += self._signal_session(signal.SIGKILL)
        return count

    async def _kill_cgroup(self) -> int:
        if not self.cgroup.populated():
            return 0  # the common case after a clean exit: one read, nothing to do
        victims = self.cgroup.pids()
        self.cgroup.kill()
        deadline = time.monotonic() + CGROUP_KILL_WAIT
        delay = 0.0002
        while self.cgroup.populated() and time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.01)
        return len(victims)


class TreeKill(KillAll):
    """Kill-all by process group, descendants and the job's marker."""

    name = "process-tree"

    def __init__(self, main: MainProcess, marker: str) -> None:
        self.main = main
        self.marker = marker

    def _tree(self) -> list[int]:
        """Main pid, its process group, descendants, marked pids."""
        pids: set[int] = set()
        if self.main.unreaped():
            pids.add(self.main.pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.main.pid, 0)
        pids.update(proctree.descendants(self.main.pid))
        pids.update(proctree.pids_with_marker(self.marker))
        pids.discard(os.getpid())
        return sorted(pids)

    def _alive(self) -> list[int]:
        return [p for p in self._tree() if is_alive(p)]

    def signal(self, signum: int) -> None:
        for pid in self._tree():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    def alive(self) -> bool:
        return bool(self._alive())

    async def kill(self) -> int:
        killed: set[int] = set()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.main.pid, signal.SIGKILL)
        for _ in range(TREE_PASSES):
            pids = self._alive()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            await asyncio.sleep(0.001)
        return len(killed)


def is_alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return False
    return data[data.rfind(")") + 2 :].split(" ", 1)[0] not in ("Z", "X")
