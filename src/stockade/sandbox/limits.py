"""Resource limits: controller cgroups per slot, rlimits through ``prlimit``.

Memory, process count and CPU are cgroup business. Hosts differ: this one
mounts the v1 controllers (memory, pids, cpu) each in its own hierarchy and
a cgroup2 tree beside them with no controllers; a modern host has only
cgroup2 with every controller. :class:`LimitCgroups` uses, per controller,
whichever the host has: a v1 directory
``<mount>/<stockade's own cgroup>/stockade/<pid>-<slot>`` (nested under the
cgroup stockade runs in, so limits of whoever started stockade still apply),
or the slot's cgroup2 directory with the controller enabled.

Jobs must be *born* inside (see :mod:`stockade.sandbox.cgroup`). In v1 a
single thread can change cgroup, so :meth:`LimitCgroups.spawning` moves only
the spawning thread: other threads of stockade never count against the
job's ``pids.max``. In cgroup2 the whole process moves, so ``pids.max`` is
lifted for the instant of the fork and set again right after.

A job killed by the memory limit is recognised by the ``oom_kill`` counter
(``memory.oom_control`` in v1 — ``memory.failcnt`` stays 0 when swap is
limited too — or ``memory.events`` in cgroup2), read before and after.

``open_files`` and ``file_size`` are rlimits: the launch argv starts with
``prlimit --nofile=N --fsize=N --``, so the job inherits them as hard limits.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stockade.errors import CleanupError, SetupError
from stockade.sandbox.cgroup import cgroup2_root

__all__ = ["CONTROLLERS", "LimitCgroups", "ResourceLimits", "v1_hierarchies"]

CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000
_DIR = "stockade"


@dataclass(frozen=True)
class ResourceLimits:
    """The limits a backend enforces, as plain numbers (``None``: unlimited)."""

    memory: int | None = None
    pids: int | None = None
    cpu: float | None = None
    open_files: int | None = None
    file_size: int | None = None

    @classmethod
    def from_spec(cls, limits: Any) -> ResourceLimits:
        """From a :class:`stockade.spec.sandbox.Limits` (or anything with its fields)."""
        if limits is None:
            return cls()
        return cls(
            memory=limits.memory,
            pids=limits.pids,
            cpu=limits.cpu,
            open_files=limits.open_files,
            file_size=limits.file_size,
        )

    def controllers(self) -> list[str]:
        """The cgroup controllers these limits need."""
        wanted = {"memory": self.memory, "pids": self.pids, "cpu": self.cpu}
        return [name for name, value in wanted.items() if value is not None]

    def prlimit_argv(self, prlimit: str = "prlimit") -> list[str]:
        """The ``prlimit … --`` prefix that sets the rlimits, or ``[]``."""
        opts = []
        if self.open_files is not None:
            opts.append(f"--nofile={self.open_files}")
        if self.file_size is not None:
            opts.append(f"--fsize={self.file_size}")
        return [prlimit, *opts, "--"] if opts else []


def v1_hierarchies() -> dict[str, tuple[Path, str]]:
    """Mounted v1 controllers: name -> (mount point, this process's cgroup in it)."""
    mounts: dict[str, Path] = {}
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                fields = right.split()
                if len(fields) < 3 or fields[0] != "cgroup":
                    continue
                for opt in fields[2].split(","):
                    if opt in CONTROLLERS:
                        mounts.setdefault(opt, Path(left.split(" ")[4]))
        own = _own_v1("/proc/self/cgroup")
    except OSError:
        return {}
    return {name: (mount, own[name]) for name, mount in mounts.items() if name in own}


def _own_v1(path: str) -> dict[str, str]:
    """controller -> cgroup path, from a ``/proc/…/cgroup`` file."""
    found: dict[str, str] = {}
    with open(path, encoding="ascii") as fh:
        for line in fh:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) == 3:
                for name in parts[1].split(","):
                    found[name] = parts[2]
    return found


def _write(path: Path, value: str) -> None:
    with open(path, "w", encoding="ascii") as fh:
        fh.write(value)


class LimitCgroups:
    """The controller cgroups of one slot. Make with :meth:`create`."""

    def __init__(self, limits: ResourceLimits, v1: dict[str, Path], v2: Path | None) -> None:
        self.limits = limits
        #: controller -> its v1 directory for this slot
        self.v1 = v1
        #: the slot's cgroup2 directory, when some controller lives there
        self.v2 = v2
        self._mounts = {name: path for name, (path, _) in v1_hierarchies().items()}

    @property
    def paths(self) -> list[Path]:
        """Every directory this object made (for diagnostics and cleanup checks)."""
        found = list(dict.fromkeys(self.v1.values()))
        return [*found, self.v2] if self.v2 is not None else found

    @classmethod
    def create(cls, label: str, limits: ResourceLimits, v2_slot: Path | None) -> LimitCgroups:
        """Make the directories ``limits`` need and write the limits into them.

        ``v2_slot`` is the slot's cgroup2 directory (from
        :class:`~stockade.sandbox.cgroup.SlotCgroup`), used for controllers
        that have no v1 hierarchy. Raises :class:`SetupError` when a limit
        cannot be enforced on this host.
        """
        hierarchies = v1_hierarchies()
        v1: dict[str, Path] = {}
        v2_needed: list[str] = []
        for name in limits.controllers():
            if name in hierarchies:
                mount, own = hierarchies[name]
                v1[name] = mount / own.lstrip("/") / _DIR / f"{os.getpid()}-{label}"
            else:
                v2_needed.append(name)
        if v2_needed and v2_slot is None:
            raise SetupError(
                f"cannot enforce the {', '.join(v2_needed)} limit: this host has no "
                f"{'/'.join(v2_needed)} cgroup controller that stockade can use; "
                "run stockade as root on a host with cgroups, or drop the limit"
            )
        self = cls(limits, v1, v2_slot if v2_needed else None)
        try:
            for path in dict.fromkeys(v1.values()):
                _prune_stale(path.parent)
                _make_dir(path)
            if self.v2 is not None:
                _enable_v2(self.v2, v2_needed)
            self._write_limits()
        except OSError as exc:
            with contextlib.suppress(CleanupError):
                self.remove()
            raise SetupError(
                f"cannot set up resource limits in {exc.filename or 'the cgroup tree'}: "
                f"{exc.strerror or exc}; stockade needs root to create cgroups"
            ) from exc
        return self

    def _dir(self, controller: str) -> Path | None:
        return self.v1.get(controller) or self.v2

    def _write_limits(self) -> None:
        lim = self.limits
        if lim.memory is not None:
            self._write_memory(lim.memory)
        if lim.pids is not None:
            path = self._dir("pids")
            assert path is not None
            _write(path / "pids.max", str(lim.pids))
        if lim.cpu is not None:
            quota = max(1000, round(lim.cpu * CPU_PERIOD_US))
            if "cpu" in self.v1:
                _write(self.v1["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(self.v1["cpu"] / "cpu.cfs_quota_us", str(quota))
            elif self.v2 is not None:
                _write(self.v2 / "cpu.max", f"{quota} {CPU_PERIOD_US}")

    def _write_memory(self, limit: int) -> None:
        if "memory" in self.v1:
            path = self.v1["memory"]
            _write(path / "memory.limit_in_bytes", str(limit))
            # Limit memory+swap to the same amount: a job must not escape into swap.
            if (path / "memory.memsw.limit_in_bytes").exists():
                _write(path / "memory.memsw.limit_in_bytes", str(limit))
        elif self.v2 is not None:
            _write(self.v2 / "memory.max", str(limit))
            if (self.v2 / "memory.swap.max").exists():
                _write(self.v2 / "memory.swap.max", "0")

    @contextlib.contextmanager
    def spawning(self) -> Iterator[None]:
        """Hold the calling thread inside the slot's v1 cgroups while it forks."""
        homes = _own_v1("/proc/thread-self/cgroup") if self.v1 else {}
        moved: list[Path] = []
        try:
            for path in self.v1.values():
                if path not in moved:
                    _write(path / "tasks", "0")
                    moved.append(path)
            if self.v2 is not None and self.limits.pids is not None and "pids" not in self.v1:
                # The whole process moves in cgroup2: its threads must not use up the job's pids.
                _write(self.v2 / "pids.max", "max")
            yield
        finally:
            for name, path in self.v1.items():
                if path in moved:
                    moved.remove(path)
                    home = self._mounts[name] / homes.get(name, "/").lstrip("/")
                    _write(home / "tasks", "0")
            if self.v2 is not None and self.limits.pids is not None and "pids" not in self.v1:
                _write(self.v2 / "pids.max", str(self.limits.pids))

    def reset_peaks(self) -> dict[str, int | None]:
        """Before a launch: reset the memory peak where the host can (v1
        ``memory.max_usage_in_bytes``) and return the peaks that cannot be
        reset as they are now (cgroup2 ``memory.peak``, ``pids.peak``), for
        :meth:`peaks`."""
        if "memory" in self.v1 and self.limits.memory is not None:
            with contextlib.suppress(OSError):
                _write(self.v1["memory"] / "memory.max_usage_in_bytes", "0")
                return {"memory_peak": None, "pids_peak": self._pids_peak()}
        return {"memory_peak": self._memory_peak(), "pids_peak": self._pids_peak()}

    def peaks(self, before: dict[str, int | None]) -> dict[str, int | None]:
        """After a job: its peak memory and process count. A peak that could
        not be reset (``before`` holds its value) is the job's only if the job
        raised it; otherwise it is unknown (``None``)."""
        found: dict[str, int | None] = {"memory_limit": self.limits.memory}
        for name, now in (("memory_peak", self._memory_peak()), ("pids_peak", self._pids_peak())):
            was = before.get(name)
            found[name] = now if now is not None and (was is None or now > was) else None
        return found

    def _memory_peak(self) -> int | None:
        if self.limits.memory is None:
            return None
        if "memory" in self.v1:
            return _read_int(self.v1["memory"] / "memory.max_usage_in_bytes")
        return None if self.v2 is None else _read_int(self.v2 / "memory.peak")

    def _pids_peak(self) -> int | None:
        path = self._dir("pids") if self.limits.pids is not None else None
        return None if path is None else _read_int(path / "pids.peak")

    def oom_kills(self) -> int:
        """How many processes the kernel has killed for this slot's memory limit."""
        path = self._dir("memory") if self.limits.memory is not None else None
        if path is None:
            return 0
        name = "memory.oom_control" if "memory" in self.v1 else "memory.events"
        return oom_kill_count(path / name)

    def remove(self) -> None:
        """Kill anything left in the directories and remove them (v1 only;
        the cgroup2 directory belongs to the slot's ``SlotCgroup``)."""
        stuck = [str(path) for path in dict.fromkeys(self.v1.values()) if not _remove_dir(path)]
        if stuck:
            raise CleanupError(
                f"cgroup directories could not be removed: {', '.join(stuck)}; "
                "a process of a job may still be exiting, remove them with rmdir",
                remaining=stuck,
            )


def _read_int(path: Path) -> int | None:
    """A cgroup file holding one number; ``None`` if absent or unreadable."""
    try:
        with open(path, encoding="ascii") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def oom_kill_count(path: Path) -> int:
    """The ``oom_kill`` line of ``memory.oom_control`` or ``memory.events``; 0 if unreadable."""
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return 0


def _make_dir(path: Path) -> None:
    """``mkdir -p`` that survives another stockade removing the empty parent meanwhile."""
    for _ in range(5):
        try:
            path.mkdir(parents=True, exist_ok=True)
            return
        except FileNotFoundError:
            continue
    path.mkdir(parents=True, exist_ok=True)


def _prune_stale(parent: Path) -> None:
    """Remove the slot directories of stockade processes that died (empty by now:
    the kernel empties a cgroup when its last process exits)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        owner = name.split("-", 1)[0]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            with contextlib.suppress(OSError):
                (parent / name).rmdir()


def _enable_v2(slot: Path, controllers: list[str]) -> None:
    """Enable ``controllers`` on the way down to ``slot`` (root -> stockade -> slot)."""
    root = cgroup2_root()
    wanted = " ".join(f"+{name}" for name in controllers)
    for parent in (slot.parent.parent, slot.parent):
        if root is not None and (parent == root or root in parent.parents):
            _write(parent / "cgroup.subtree_control", wanted)


def _remove_dir(path: Path) -> bool:
    """Kill what is left in a v1 directory, remove it and its empty parent."""
    for attempt in range(100):
        try:
            path.rmdir()
            break
        except FileNotFoundError:
            break
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return False
            if attempt % 10 == 0:
                _kill_members(path)
            time.sleep(0.002)
    else:
        return False
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # the shared "stockade" directory, once no slot uses it
    return True


def _kill_members(path: Path) -> None:
    try:
        pids = (path / "cgroup.procs").read_text(encoding="ascii").split()
    except OSError:
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(pid), signal.SIGKILL)
