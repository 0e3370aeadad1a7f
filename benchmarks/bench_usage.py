"""What measuring each attempt's resource use costs: jobs/s of ``/bin/true``
with accounting on and off, in the same run.

Accounting is the ``wait4`` reap (instead of ``waitpid``), one
``getrusage(RUSAGE_SELF)`` and the ``usage`` record of the result.
``stockade.sandbox.usage.set_measuring`` turns it off and on between halves
of each round (as ``STOCKADE_USAGE=0`` does for a whole process), through
two ``LocalSandbox`` slots set up once, as ``throughput_true`` runs them.
Target: with accounting, at least 0.95 of the jobs/s without.
"""

from __future__ import annotations

import asyncio
import tempfile
import time

from benchmarks import Row, median, progress
from stockade.runner.attempt import run as run_attempt
from stockade.runner.result import Outcome
from stockade.runner.spec import RunSpec
from stockade.sandbox.local import LocalSandbox
from stockade.sandbox.proctree import enable_subreaper
from stockade.sandbox.usage import set_measuring

TARGET = 0.95
CONCURRENCY = 2


async def _jobs_per_second(n: int, data_dir: str, slots: list[LocalSandbox], on: bool) -> float:
    spec = RunSpec(argv=["/bin/true"], data_dir=data_dir, workdir=data_dir)

    async def slot(sandbox: LocalSandbox, count: int) -> None:
        for _ in range(count):
            result = await run_attempt(spec, sandbox=sandbox, log_file=False)
            assert result.outcome is Outcome.SUCCEEDED, result
            assert (result.usage is not None) is on

    set_measuring(on)
    started = time.perf_counter()
    await asyncio.gather(*(slot(s, n // CONCURRENCY) for s in slots))
    return n / (time.perf_counter() - started)


def run(quick: bool) -> list[Row]:
    n, rounds = (400, 2) if quick else (2000, 8)
    enable_subreaper()
    slots = [LocalSandbox() for _ in range(CONCURRENCY)]
    for s in slots:
        s.setup()
    off: list[float] = []
    on: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="stockade-bench-") as tmp:
            asyncio.run(_jobs_per_second(40, tmp, slots, True))  # warm-up
            for i in range(rounds):
                first = i % 2 == 0  # the order alternates: neither half is always second
                progress(f"round {i + 1}/{rounds}: {n // rounds} x /bin/true, on and off")
                for measured in (first, not first):
                    rate = asyncio.run(_jobs_per_second(n // rounds, tmp, slots, measured))
                    (on if measured else off).append(rate)
    finally:
        set_measuring(True)
        for s in slots:
            s.cleanup()
    pairs = list(zip(on, off, strict=True))
    ratio = median(a / b for a, b in pairs)
    cost = median(CONCURRENCY * 1e6 * (1 / a - 1 / b) for a, b in pairs)
    with_, without = median(on), median(off)
    return [
        Row(
            f"usage accounting /bin/true x{n} (c=2)",
            f"{with_:.0f} jobs/s",
            f"{without:.0f} jobs/s (off)",
            ratio,
            f">= {TARGET}",
            ratio >= TARGET,
            note=f"measuring costs {cost:.0f} us per attempt (wait4 rusage and the usage "
            f"record; median of per-round differences, {rounds} rounds, so it can be "
            "below 0 on a busy machine)",
        )
    ]
