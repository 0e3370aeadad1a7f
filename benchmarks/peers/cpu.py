"""CPU time of a run: the whole machine's, and its own processes'.

On a machine shared with other work the whole machine's busy time over a
run says as much about the neighbours as about the run; the run's own
processes (its workers and all their descendants, the jobs included; the
benchmark process, which submits and watches; and the server processes
serving it: ``redis-server``, or the PostgreSQL backends of its database)
say what the run itself cost.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["machine_cpu", "pg_backends", "redis_servers", "snapshot", "spent"]

TICK = os.sysconf("SC_CLK_TCK")


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine since boot (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):  # a thread that just ended
            kids += map(int, Path(f"/proc/{pid}/task/{task}/children").read_text().split())
    return kids


def snapshot(roots: Iterable[int], servers: Iterable[int] = ()) -> dict[int, float]:
    """CPU seconds so far of each process in the trees of ``roots`` (with
    its reaped children's) and of each of ``servers`` (its own only: a
    server's other children are not the run's); key 0 is this process."""
    times = os.times()
    cpu = {0: times.user + times.system}
    todo = [(pid, True) for pid in roots] + [(pid, False) for pid in servers]
    while todo:
        pid, tree = todo.pop()
        with contextlib.suppress(OSError, ValueError):  # a process that just ended
            fields = _stat(pid)
            used = int(fields[11]) + int(fields[12])
            if tree:
                used += int(fields[13]) + int(fields[14])
                todo += [(kid, True) for kid in _children(pid)]
            cpu[pid] = used / TICK
    return cpu


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two snapshots (of processes alive at the second)."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


def redis_servers() -> list[int]:
    """The ``redis-server`` processes on this machine."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() == "redis-server":
                    found.append(int(entry))
    return found


def pg_backends(server: str, database: str) -> list[int]:
    """The PostgreSQL backends connected to ``database`` (a local server)."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return [int(row[0]) for row in rows]
