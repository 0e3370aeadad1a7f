"""Process-tree helpers for guaranteed kill and reaping.

Used as the fallback kill-all where no cgroup v2 is available, and for
reaping: when the owner process (the CLI, a worker) is a *child subreaper*,
orphans of a job are re-parented to it instead of to init, so it can reap
them at once instead of leaving zombies for init to collect seconds later.

Which of our children are a job's orphans? Every job is started as the
leader of a new session, so a job's processes (daemons included, which
``setsid`` again) never share our own session id. A zombie child of ours in
another session that is not a job's main process is an orphan we reap;
children in our own session (say, a ``subprocess.run`` elsewhere in the same
program) are left to whoever started them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

__all__ = [
    "OrphanReaper",
    "children",
    "descendants",
    "enable_subreaper",
    "is_subreaper",
    "pids_with_marker",
    "reap_orphans",
    "session_members",
    "set_subreaper_ctypes",
    "set_subreaper_native",
    "start_time",
]

_PR_SET_CHILD_SUBREAPER = 36
_subreaper = False


def enable_subreaper() -> bool:
    """Make this process the reaper of its descendants' orphans (Linux only)."""
    global _subreaper  # noqa: PLW0603 - process-wide kernel state, mirrored once
    if not _subreaper:
        done = set_subreaper_native()
        _subreaper = set_subreaper_ctypes() if done is None else done
    return _subreaper


def set_subreaper_native() -> bool | None:
    """The ``prctl`` through the C spawn extension; None where it is not built.
    Loading ctypes for the plain path cost ``stockade exec`` more than the call."""
    try:
        from stockade.sandbox import _clonespawn  # type: ignore[attr-defined]
    except ImportError:
        return None
    native = getattr(_clonespawn, "set_subreaper", None)  # None: built before it had one
    return None if native is None else bool(native())


def set_subreaper_ctypes() -> bool:
    """The same ``prctl`` through ctypes: the fallback."""
    import ctypes

    try:
        # CDLL(None): libc is already mapped into the process; find_library("c")
        # would run `ldconfig -p` in a subprocess on every start.
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def is_subreaper() -> bool:
    """Whether :func:`enable_subreaper` succeeded in this process."""
    return _subreaper


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all threads), from ``/proc/PID/task/*/children``."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fh:
                out.extend(int(x) for x in fh.read().split())
        except OSError:
            continue
    return out


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, parents before children."""
    out: list[int] = []
    stack = [pid]
    while stack:
        for child in children(stack.pop()):
            out.append(child)
            stack.append(child)
    return out


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, session id) of ``pid`` from /proc, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()
    return fields[0], int(fields[3])


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None if it is gone.

    A pid and its start time name one process: a pid reused by a later
    process has a later start time.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    return int(data[data.rfind(")") + 2 :].split()[19])


def reap_orphans(exclude: set[int]) -> int:
    """Reap zombie children of ours that are jobs' orphans; return how many.

    ``exclude`` holds main pids of live handles, reaped by their own
    handles. Only children outside our own session are touched.
    """
    me = os.getpid()
    own_sid = os.getsid(0)
    reaped = 0
    for pid in children(me):
        if pid in exclude:
            continue
        info = _stat(pid)
        if info is None or info[0] != "Z" or info[1] == own_sid:
            continue
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            reaped += 1 if done else 0
    return reaped


class OrphanReaper:
    """Reaps jobs' orphans that re-parented to this subreaper and exited.

    Right away after a kill-all that killed something (those are the zombies
    a kill makes); otherwise at most every ``interval`` seconds: an orphan
    that exited on its own before its job ended waits that long as a zombie,
    and a worker running short jobs saves a walk of ``/proc`` per job.
    ``live`` holds the main pids of handles not yet reaped (their handles
    reap them)."""

    def __init__(
        self,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        reap: Callable[[set[int]], int] = reap_orphans,
    ) -> None:
        self.interval = interval
        self.live: set[int] = set()
        self._clock = clock
        self._reap = reap
        self._last: float | None = None

    def after_kill(self, *, killed: bool) -> int:
        """Reap now if due (see the class); how many were reaped."""
        now = self._clock()
        if not killed and self._last is not None and now - self._last < self.interval:
            return 0
        self._last = now
        return self._reap(self.live)


def session_members(sid: int) -> list[int]:
    """Live pids whose session or process group is ``sid`` (a job's main pid).

    A whole-``/proc`` scan, made only when a job is stopped: a job that
    left its cgroup (root can) is still found by the session it was born in.
    Pids are not reused until the kernel's pid counter wraps, so the id of a
    main process reaped a moment ago still names its own session.
    """
    found: list[int] = []
    for pid, data in _read_each("stat"):
        fields = data[data.rfind(b")") + 2 :].split()
        if fields[0] not in (b"Z", b"X") and sid in (int(fields[2]), int(fields[3])):
            found.append(pid)
    return found


def pids_with_marker(marker: str) -> list[int]:
    """Pids whose environment carries ``STOCKADE_JOB_ID=<marker>``.

    A whole-``/proc`` scan: the attribution of last resort for processes that
    escaped both the cgroup and the process tree.
    """
    needle = f"STOCKADE_JOB_ID={marker}\0".encode()
    return [pid for pid, data in _read_each("environ") if needle in data]


def _read_each(name: str) -> Iterator[tuple[int, bytes]]:
    """``(pid, contents of /proc/PID/<name>)`` for every other process that can be read."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/{name}", "rb") as fh:
                yield int(entry), fh.read()
        except OSError:
            continue
