"""What one attempt used: CPU, memory, processes, block I/O.

Two sources, per job:

- **rusage of the reaped main process** (``os.wait4``), for every job on
  every backend: CPU user and system seconds, the largest resident set of
  any one process, block-device reads and writes. It covers the main
  process and every descendant that was waited for by its parent (a shell's
  children, bwrap's and runc's payload); a daemon that re-parented away and
  was reaped by stockade's subreaper is not counted. It is exact per job:
  nothing of other jobs running in the same stockade process is mixed in.
- **the slot's controller cgroups**, only where the job's profile sets a
  limit that made them: the whole tree's peak memory (v1
  ``memory.max_usage_in_bytes``, reset before each launch; cgroup2
  ``memory.peak``) and its peak process count (``pids.peak``). A peak that
  is not reset is reported only when this job raised it, so it is exact
  when given.

Figures a host does not give are ``None``, never a guess.
"""

from __future__ import annotations

import os
import resource
from typing import Any

__all__ = ["FIELDS", "Usage", "human_size", "measuring", "oom_error", "set_measuring", "summary"]

#: Whether attempts are measured: on unless ``STOCKADE_USAGE=0`` (the benchmark
#: of what measuring costs turns it off and on in one process).
_measuring = [os.environ.get("STOCKADE_USAGE", "1") != "0"]


def measuring() -> bool:
    """Whether launched jobs' resource use is measured."""
    return _measuring[0]


def set_measuring(on: bool) -> None:
    """Turn measuring on or off for jobs launched from now on."""
    _measuring[0] = on


#: ``ru_inblock``/``ru_oublock`` count 512-byte sectors.
_SECTOR = 512


#: The figures of a :class:`Usage`, in the order of its record.
FIELDS = (
    "cpu_user", "cpu_system", "max_rss", "memory_peak", "memory_limit", "pids_peak",
    "read_bytes", "write_bytes", "wall",
)  # fmt: skip


class Usage:
    """Resource use of one attempt; ``None``: not measured on this host or backend.

    A plain class, not a dataclass: it is built on ``stockade exec``'s path,
    and generating a dataclass cost more at import than every use of it.

    - ``cpu_user``, ``cpu_system``: CPU seconds in user mode and in the
      kernel, of the main process and its waited-for descendants;
    - ``max_rss``: the largest resident set of any one of those processes,
      in bytes; only when above stockade's own peak (see :meth:`from_rusage`);
    - ``memory_peak``: peak memory of the whole job (every process, page
      cache included), in bytes: only with a memory limit;
    - ``memory_limit``: the memory limit in force, in bytes;
    - ``pids_peak``: peak number of processes and threads, only with a pids
      limit (``pids.peak``);
    - ``read_bytes``, ``write_bytes``: bytes read from and written to block
      devices (not page-cache hits, not tmpfs);
    - ``wall``: seconds from launch to the end of the attempt.
    """

    __slots__ = FIELDS

    def __init__(
        self,
        *,
        cpu_user: float | None = None,
        cpu_system: float | None = None,
        max_rss: int | None = None,
        memory_peak: int | None = None,
        memory_limit: int | None = None,
        pids_peak: int | None = None,
        read_bytes: int | None = None,
        write_bytes: int | None = None,
        wall: float | None = None,
    ) -> None:
        self.cpu_user = cpu_user
        self.cpu_system = cpu_system
        self.max_rss = max_rss
        self.memory_peak = memory_peak
        self.memory_limit = memory_limit
        self.pids_peak = pids_peak
        self.read_bytes = read_bytes
        self.write_bytes = write_bytes
        self.wall = wall

    def __repr__(self) -> str:
        return f"Usage({self.to_dict()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Usage) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_rusage(cls, ru: resource.struct_rusage) -> Usage:
        """The figures ``wait4`` gives for a reaped child (``ru_maxrss`` is in KiB).

        Linux carries the spawner's own peak resident set into a child's
        ``ru_maxrss`` at its ``exec`` (the child was forked, or vforked, from
        stockade), so a figure not above stockade's own peak may be
        stockade's, not the job's: it is left out (``None``).
        """
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return cls(
            cpu_user=round(ru.ru_utime, 6),
            cpu_system=round(ru.ru_stime, 6),
            max_rss=ru.ru_maxrss * 1024 if ru.ru_maxrss > own else None,
            read_bytes=ru.ru_inblock * _SECTOR,
            write_bytes=ru.ru_oublock * _SECTOR,
        )

    def with_figures(self, **figures: Any) -> Usage:
        """A copy with the given figures set (those that are not ``None``)."""
        given = {name: value for name, value in figures.items() if value is not None}
        return Usage(**{**self.to_dict(), **given}) if given else self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (every field, ``None`` where not measured)."""
        return {name: getattr(self, name) for name in FIELDS}

    @property
    def cpu(self) -> float | None:
        """User plus system CPU seconds."""
        if self.cpu_user is None or self.cpu_system is None:
            return None
        return self.cpu_user + self.cpu_system


def oom_error(usage: Usage) -> str:
    """The error of an attempt killed for memory: the limit and the peak."""
    limit = "?" if usage.memory_limit is None else human_size(usage.memory_limit)
    peak = usage.memory_peak if usage.memory_peak is not None else usage.max_rss
    seen = "unknown" if peak is None else human_size(peak)
    return f"memory limit {limit} reached (peak {seen})"


def human_size(size: int) -> str:
    """``63.9MiB``: bytes in the largest binary unit that keeps a number >= 1."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TiB"


def summary(usage: dict[str, Any]) -> str:
    """One line of a stored usage record for people: what was measured, nothing else."""
    parts: list[str] = []
    if usage.get("cpu_user") is not None and usage.get("cpu_system") is not None:
        parts.append(f"cpu {usage['cpu_user']:.2f}s user {usage['cpu_system']:.2f}s sys")
    for key, label in (("memory_peak", "memory peak"), ("max_rss", "max rss")):
        if usage.get(key) is not None:
            parts.append(f"{label} {human_size(usage[key])}")
    if usage.get("pids_peak") is not None:
        parts.append(f"{usage['pids_peak']} processes at most")
    for key, label in (("read_bytes", "read"), ("write_bytes", "written")):
        if usage.get(key):
            parts.append(f"{label} {human_size(usage[key])}")
    if usage.get("wall") is not None:
        parts.append(f"wall {usage['wall']:.2f}s")
    return ", ".join(parts)
