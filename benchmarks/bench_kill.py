"""Kill latency: from the end of the grace period to the last process gone.

A stopped job must be gone at once and completely, daemons included, or a
slot is reused while the last job still holds files, ports or memory.

The tree (20 processes, each writes its pid to a file): the main process
and 6 children ignoring SIGTERM, 6 ``setsid`` children, 4 double-forked
``setsid`` daemons ignoring SIGTERM (re-parented away from the tree), 3
plain children. Each figure is the median (and max) of 20 trees, checked
for survivors afterwards through pidfds taken when the tree was up (so a
reused pid never counts). Subreaper on, as the CLI has it.

* runner: :func:`stockade.runner.attempt.run` with a timeout and
  ``kill_grace=0.2``; the Supervisor's report gives ``all_gone -
  grace_ended`` (``run()`` does not return the report, so the Supervisor is
  swapped for a subclass that records it).
* sandbox: ``await handle.kill_all()`` of a ``LocalSandbox`` launch, timed
  directly, with the cgroup and with the process-tree fallback.
* baselines on the same tree: ``os.killpg(pgid, SIGKILL)`` alone, and a
  walk of the descendants killing each; both until what they hit is gone.

Target (runner and sandbox with cgroup): median <= 10 ms, 0 survivors.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar
from unittest import mock

from benchmarks import Row, median, ms, progress
from stockade.runner import attempt
from stockade.runner.result import Outcome
from stockade.runner.spec import RunSpec
from stockade.runner.supervise import Report, Supervisor
from stockade.sandbox.base import LaunchRequest
from stockade.sandbox.local import LocalSandbox
from stockade.sandbox.proctree import descendants, enable_subreaper, reap_orphans

TARGET_MS = 10.0
PROCS = 20
TREE = r"""
pids="$1"
for i in 1 2 3 4 5 6; do ( trap '' TERM; echo $BASHPID >> "$pids"; exec sleep 300 ) & done
for i in 1 2 3 4 5 6; do setsid sh -c 'echo $$ >> "$0"; exec sleep 300' "$pids" & done
for i in 1 2 3 4; do ( ( trap '' TERM; echo $BASHPID >> "$pids"; exec setsid sleep 300 ) & ) & done
for i in 1 2 3; do ( echo $BASHPID >> "$pids"; exec sleep 300 ) & done
trap '' TERM
echo $$ >> "$pids"
exec sleep 300
"""


class Tree:
    """One started tree, its processes held by pidfd: the machine's pids wrap
    (``pid_max`` can be 32768), and a reused pid must never count as a survivor."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fds: dict[int, int] = {}

    def wait_ready(self, limit: float = 10.0) -> Tree:
        """Wait until all 20 have exec'd ``sleep`` (so ``setsid`` is done)."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            pids = [int(x) for x in self.path.read_text().split()] if self.path.exists() else []
            if len(pids) == PROCS and all(_comm(p) == "sleep" for p in pids):
                self.fds = {pid: os.pidfd_open(pid) for pid in pids}
                return self
            time.sleep(0.002)
        raise RuntimeError(f"tree did not start: {len(pids)} pids in {self.path}")

    def alive(self, pids: Iterable[int] | None = None) -> list[int]:
        """Those of ``pids`` (default: all) still running: pidfd not readable."""
        pids = list(self.fds if pids is None else pids)
        ready = set(select.select([self.fds[p] for p in pids], [], [], 0)[0])
        return [p for p in pids if self.fds[p] not in ready]

    def wait_gone(self, pids: Iterable[int] | None = None, limit: float = 5.0) -> None:
        end = time.monotonic() + limit
        while self.alive(pids) and time.monotonic() < end:
            time.sleep(0.00005)

    def clean(self) -> int:
        """SIGKILL what is left, reap, release the fds; return how many were left."""
        left = self.alive()
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.fds[pid], signal.SIGKILL)
        self.wait_gone(left)
        reap_orphans(set())
        for fd in self.fds.values():
            os.close(fd)
        return len(left)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _pgid(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        return os.getpgid(pid)
    return None


def _baseline(kind: str, tmp: Path, i: int) -> tuple[float, int]:
    """(seconds, survivors) of ``killpg`` or a descendant walk on a fresh tree."""
    tree = Tree(tmp / f"{kind}-{i}")
    cmd = ["bash", "-c", TREE, "tree", str(tree.path)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL)
    tree.wait_ready()
    started = time.perf_counter()
    if kind == "killpg":
        hit = [p for p in tree.fds if _pgid(p) == proc.pid]
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        walked = [proc.pid, *descendants(proc.pid)]
        for pid in walked:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        hit = [p for p in walked if p in tree.fds]  # the walk also finds zombies
    tree.wait_gone(hit)
    elapsed = time.perf_counter() - started
    proc.wait()
    return elapsed, tree.clean()


async def _sandbox(sandbox: LocalSandbox, tmp: Path, i: int) -> tuple[float, int]:
    """(seconds, survivors) of ``kill_all()`` on a tree launched in ``sandbox``."""
    tree = Tree(tmp / f"{sandbox.slot}-{i}")
    marker = f"bench-kill-{sandbox.slot}-{i}"
    handle = sandbox.launch(
        LaunchRequest(
            argv=["bash", "-c", TREE, "tree", str(tree.path)],
            env={**os.environ, "STOCKADE_JOB_ID": marker},
            cwd=str(tmp),
            workspace=str(tmp),
            marker=marker,
        )
    )
    tree.wait_ready()
    started = time.perf_counter()
    await handle.kill_all()
    elapsed = time.perf_counter() - started
    handle.close()
    return elapsed, tree.clean()


class _Recording(Supervisor):
    """The real Supervisor, keeping the report ``run()`` does not return."""

    reports: ClassVar[list[Report]] = []

    async def supervise(self) -> Report:
        report = await super().supervise()
        self.reports.append(report)
        return report


async def _runner(sandbox: LocalSandbox, tmp: Path, i: int) -> tuple[float, int]:
    """(seconds from grace end to all gone, survivors) through ``run()``.

    The tree's pidfds are taken while it runs (it is up in tens of ms, the
    timeout fires at 0.5 s), by a thread watching the pid file.
    """
    tree = Tree(tmp / f"runner-{i}")
    spec = RunSpec(
        argv=["bash", "-c", TREE, "tree", str(tree.path)],
        timeout=0.5,
        kill_grace=0.2,
        data_dir=str(tmp),
        workdir=str(tmp),
    )
    watch = asyncio.create_task(asyncio.to_thread(tree.wait_ready))
    with mock.patch.object(attempt, "Supervisor", _Recording):
        result = await attempt.run(spec, sandbox=sandbox)
    await watch
    report = _Recording.reports.pop()
    assert result.outcome is Outcome.TIMED_OUT, result
    assert report.grace_ended is not None and report.all_gone is not None
    return report.all_gone - report.grace_ended, tree.clean()


def _left(runs: list[tuple[float, int]]) -> str:
    """Survivors: ``0 left``, ``10/20 left per tree``, or ``3 left in 20 trees``."""
    counts = {n for _, n in runs}
    if counts == {0}:
        return "0 left"
    if len(counts) == 1:
        return f"{counts.pop()}/{PROCS} left per tree"
    return f"{sum(n for _, n in runs)} left in {len(runs)} trees"


def _times(runs: list[tuple[float, int]]) -> list[float]:
    return [t for t, _ in runs]


def _row(name: str, runs: list[tuple[float, int]], base: list[tuple[float, int]]) -> Row:
    med, base_med = median(_times(runs)), median(_times(base))
    left = sum(n for _, n in runs)
    return Row(
        name,
        f"{ms(med)} (max {ms(max(_times(runs)))}), {_left(runs)}",
        f"{ms(base_med)} (killpg)",
        med / base_med,
        f"<= {TARGET_MS:.0f} ms, 0 left",
        med * 1000 <= TARGET_MS and left == 0,
    )


def run(quick: bool) -> list[Row]:
    reps = 5 if quick else 20
    enable_subreaper()
    with tempfile.TemporaryDirectory(prefix="stockade-bench-") as name:
        tmp = Path(name)
        progress(f"{reps} trees each: killpg, descendant walk")
        killpg = [_baseline("killpg", tmp, i) for i in range(reps)]
        walk = [_baseline("walk", tmp, i) for i in range(reps)]
        cgroup, fallback = LocalSandbox(), LocalSandbox(use_cgroup=False)
        cgroup.setup()
        fallback.setup()
        try:
            kind = "cgroup" if cgroup.cgroup is not None else "process-tree (no cgroup here)"
            progress(f"{reps} trees each: kill_all() {kind}, process-tree fallback")
            direct = [asyncio.run(_sandbox(cgroup, tmp, i)) for i in range(reps)]
            tree = [asyncio.run(_sandbox(fallback, tmp, i)) for i in range(reps)]
            progress(f"{reps} trees through run(): timeout 0.5 s, kill_grace 0.2 s")
            ladder = [asyncio.run(_runner(cgroup, tmp, i)) for i in range(reps)]
        finally:
            cgroup.cleanup()
            fallback.cleanup()
    rows = [
        _row("kill: runner, grace end -> all gone", ladder, killpg),
        _row(f"kill: sandbox kill_all() ({kind})", direct, killpg),
        _row("kill: sandbox kill_all() (process-tree)", tree, killpg),
    ]
    rows[-1].target, rows[-1].ok = "-", None
    for label, runs in (("killpg alone", killpg), ("descendant walk", walk)):
        figure = f"{ms(median(_times(runs)))} (max {ms(max(_times(runs)))}), {_left(runs)}"
        rows.append(Row(f"  baseline: {label}", figure))
    rows[-1].note = f"{reps} trees of {PROCS} per line; baselines: until what they hit is gone"
    return rows
