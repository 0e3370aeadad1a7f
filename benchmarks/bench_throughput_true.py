"""Throughput of tiny jobs: 2,000 attempts of ``/bin/true`` at concurrency 2.

What a worker pays per attempt on top of spawning a process: workspace and
runtime files, environment, log file, pidfd, cgroup move, supervision, kill
sweep, result. ``/bin/true`` does nothing, so this is all overhead.

Stockade: :func:`stockade.runner.attempt.run` through two ``LocalSandbox``
slots set up once and reused (as a worker would), each running its share
sequentially, with the subreaper on (as the CLI does), data dir in a tmp dir.
Baseline: a bare asyncio loop at concurrency 2 (``create_subprocess_exec`` +
``communicate()``, stdout and stderr piped). Target: >= 0.7 of its jobs/s.

Informational: the same with the data dir on tmpfs (how much of the cost is
the filesystem: per-attempt runtime dir, log dir and files), and
``xargs -P2 -n1 /bin/true`` for scale.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time

from benchmarks import Row, median, progress
from stockade.runner.attempt import run as run_attempt
from stockade.runner.result import Outcome
from stockade.runner.spec import RunSpec
from stockade.sandbox.local import LocalSandbox
from stockade.sandbox.proctree import enable_subreaper

TARGET = 0.7
CONCURRENCY = 2


async def _bare(n: int) -> float:
    """Jobs/s of the bare asyncio spawn loop."""

    async def slot(count: int) -> None:
        for _ in range(count):
            proc = await asyncio.create_subprocess_exec(
                "/bin/true", stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            await proc.communicate()
            assert proc.returncode == 0

    started = time.perf_counter()
    await asyncio.gather(*(slot(n // CONCURRENCY) for _ in range(CONCURRENCY)))
    return n / (time.perf_counter() - started)


async def _stockade(n: int, data_dir: str, slots: list[LocalSandbox]) -> float:
    """Jobs/s through the runner, one sequential loop per reused slot."""
    spec = RunSpec(argv=["/bin/true"], data_dir=data_dir, workdir=data_dir)

    async def slot(sandbox: LocalSandbox, count: int) -> None:
        for _ in range(count):
            result = await run_attempt(spec, sandbox=sandbox)
            assert result.outcome is Outcome.SUCCEEDED, result

    started = time.perf_counter()
    await asyncio.gather(*(slot(s, n // CONCURRENCY) for s in slots))
    return n / (time.perf_counter() - started)


def _xargs(n: int) -> float:
    items = b"x\n" * n
    started = time.perf_counter()
    subprocess.run(["xargs", "-P2", "-n1", "/bin/true"], input=items, check=True)
    return n / (time.perf_counter() - started)


def _rounds(
    n: int, rounds: int, data_dir: str, slots: list[LocalSandbox]
) -> tuple[float, float, float]:
    """(bare jobs/s, stockade jobs/s, ratio), medians over ``rounds`` rounds of
    ``n / rounds`` attempts each, bare and stockade taking turns. The ratio is
    the median of each round's own ratio: a burst of load elsewhere on the
    machine hits both halves of a round alike, and a few disturbed rounds do
    not decide the figure."""
    bare: list[float] = []
    ours: list[float] = []
    for i in range(rounds):
        progress(f"round {i + 1}/{rounds}: {n // rounds} x /bin/true, bare then stockade")
        bare.append(asyncio.run(_bare(n // rounds)))
        ours.append(asyncio.run(_stockade(n // rounds, data_dir, slots)))
    return median(bare), median(ours), median(o / b for o, b in zip(ours, bare, strict=True))


def run(quick: bool) -> list[Row]:
    n, rounds = (400, 2) if quick else (2000, 8)
    enable_subreaper()
    slots = [LocalSandbox() for _ in range(CONCURRENCY)]
    for s in slots:
        s.setup()
    kill_method = "cgroup" if all(s.cgroup for s in slots) else "process-tree"
    try:
        with tempfile.TemporaryDirectory(prefix="stockade-bench-") as tmp:
            progress(f"warm-up; data dir {tmp}, {kill_method} slots")
            asyncio.run(_bare(40))
            asyncio.run(_stockade(40, tmp, slots))
            bare, ours, ratio = _rounds(n, rounds, tmp, slots)
        shm = None
        if os.path.isdir("/dev/shm"):
            with tempfile.TemporaryDirectory(prefix="stockade-bench-", dir="/dev/shm") as tmp:
                progress("same again with the data dir on tmpfs (/dev/shm)")
                shm = _rounds(n, rounds, tmp, slots)
    finally:
        for s in slots:
            s.cleanup()
    progress(f"xargs -P2, {n} x /bin/true")
    xargs = _xargs(n)
    rows = [
        Row(
            f"throughput /bin/true x{n} (c=2)",
            f"{ours:.0f} jobs/s",
            f"{bare:.0f} jobs/s (asyncio)",
            ratio,
            f">= {TARGET}",
            ratio >= TARGET,
            note=f"stockade costs {2e6 / ours - 2e6 / bare:.0f} us more per attempt than the "
            f"bare loop ({kill_method} slots, data dir in {tempfile.gettempdir()}); "
            f"medians of {rounds} rounds",
        ),
    ]
    if shm is not None:
        rows.append(
            Row(
                "  same, data dir on tmpfs",
                f"{shm[1]:.0f} jobs/s",
                f"{shm[0]:.0f} jobs/s (asyncio)",
                shm[2],
            )
        )
    rows.append(
        Row(
            "  for scale: xargs -P2 -n1",
            f"{xargs:.0f} jobs/s",
            f"{bare:.0f} jobs/s (asyncio)",
            xargs / bare,
        )
    )
    return rows
