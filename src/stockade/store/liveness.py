"""Whether the worker a ``workers`` row describes may still be running.

A worker name belongs to one live process at a time. On the host that
registered it, the row's process is looked at directly: the pid must be
alive *and* have the start time the row recorded (clock ticks after boot,
``/proc/PID/stat``), so a pid the kernel gave to another process since does
not count, and a different boot id means the host rebooted since. From
another host only the heartbeat tells: a row seen within its lease is live.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Process", "holds_name", "start_ticks", "this_process"]

_BOOT_ID = "/proc/sys/kernel/random/boot_id"


@dataclass(frozen=True)
class Process:
    """Where a worker runs, as its row records it."""

    hostname: str
    boot_id: str | None
    pid: int
    pid_start: int | None


def start_ticks(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks after boot; ``None`` if
    there is no such process (or no ``/proc``), or it has exited and waits to
    be reaped (a SIGKILLed worker whose parent, a subreaper, has not yet
    waited for it holds nothing)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # Field 22; the name (field 2) is in parentheses and may hold anything.
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def _boot_id() -> str | None:
    try:
        with open(_BOOT_ID, encoding="ascii") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def this_process() -> Process:
    """This process, as a worker row records it."""
    pid = os.getpid()
    return Process(socket.gethostname(), _boot_id(), pid, start_ticks(pid))


def holds_name(row: Mapping[str, Any], now: float, lease: float, here: Process) -> bool:
    """Whether the worker of ``row`` may still be running, seen from ``here``
    at database time ``now``. ``lease`` stands in for a row that recorded none.

    A stopped worker holds nothing. On this host (same name, same boot), the
    row's pid must still run with the start time it recorded; this very
    process counts as live (another worker object in it may be using the
    name). Elsewhere, or for a row that recorded no start time, the worker
    is live while its last heartbeat is younger than its lease.
    """
    if row["stopped_at"] is not None:
        return False
    if row["hostname"] == here.hostname and row["pid_start"] is not None:
        if row["boot_id"] != here.boot_id:
            return False  # the host rebooted since: that process is gone
        return bool(start_ticks(row["pid"]) == row["pid_start"])
    return bool(now - row["last_seen"] < (row["lease"] or lease))
