"""Pipelines: how close the scheduler gets to the ideal makespan, and what
``stockade run`` costs to start.

Makespan: a 200-job two-stage pipeline (100 ``build`` jobs, then 100 ``test``
jobs that need the whole build step), every job ``sleep 0.05`` (a job of
known duration, no shell), concurrency 4, run in this process by
:class:`stockade.pipeline.scheduler.Scheduler` with no observer, data dir in
a tmp dir. The ideal for that concurrency is each stage's jobs in full waves
(``ceil(100 / 4) * 0.05 s`` per stage, the barrier between them): 2.5 s.
Target: makespan <= 1.05x the ideal. Scheduling overhead per job is
``(makespan - ideal) / jobs``. Informational: a bare asyncio loop running
the same 200 sleeps with the same barrier (an ``asyncio.Semaphore(4)`` over
``create_subprocess_exec``), the floor of this machine with process
start-up included, so the part of the overhead that is stockade's own.

Start-up: wall time of ``stockade run`` of a one-step pipeline running
``true`` against ``stockade exec -- true``, both as subprocesses, medians of
repeated runs taking turns. Informational (no target): the price of the
pipeline path (config loading with pydantic, rich, the scheduler).
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import tempfile
import time

from benchmarks import BIN, Row, median, ms, progress, wall

TARGET = 1.05
JOBS_PER_STAGE = 100
SLEEP = 0.05
CONCURRENCY = 4
ONE_STEP = """\
pipelines:
  one:
    steps:
      only:
        command: ["true"]
"""


def _config(jobs: int) -> dict[str, object]:
    items = list(range(jobs))
    sleep = {"command": ["sleep", str(SLEEP)], "max_attempts": 1}
    return {
        "pipelines": {
            "bench": {
                "steps": {
                    "build": {"task": sleep, "for_each": items},
                    "test": {"task": sleep, "for_each": items, "needs": ["build"]},
                }
            }
        }
    }


async def _scheduled(jobs: int, data_dir: str) -> float:
    """Seconds the scheduler takes to run both stages."""
    from stockade.pipeline.model import Status
    from stockade.pipeline.scheduler import Scheduler
    from stockade.spec import Config

    config = Config.model_validate(_config(jobs))
    name, spec = config.pipeline("bench")
    scheduler = Scheduler(config, name, spec, run_id="bench", jobs=CONCURRENCY, data_dir=data_dir)
    started = time.perf_counter()
    run = await scheduler.execute()
    elapsed = time.perf_counter() - started
    assert run.status is Status.SUCCEEDED, run.to_dict()["steps"]
    assert len(run.jobs()) == 2 * jobs
    return elapsed


async def _bare(jobs: int) -> float:
    """Seconds a bare asyncio loop takes for the same sleeps and barrier."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with gate:
            proc = await asyncio.create_subprocess_exec(
                "sleep", str(SLEEP), stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            await proc.communicate()
            assert proc.returncode == 0

    started = time.perf_counter()
    for _stage in range(2):
        await asyncio.gather(*(one() for _ in range(jobs)))
    return time.perf_counter() - started


def _makespan(quick: bool) -> list[Row]:
    jobs = 40 if quick else JOBS_PER_STAGE
    rounds = 1 if quick else 3
    ideal = 2 * math.ceil(jobs / CONCURRENCY) * SLEEP
    ours: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory(prefix="stockade-bench-") as tmp:
        for index in range(rounds):
            progress(f"round {index + 1}/{rounds}: {2 * jobs} jobs, scheduler then bare loop")
            ours.append(asyncio.run(_scheduled(jobs, os.path.join(tmp, str(index)))))
            bare.append(asyncio.run(_bare(jobs)))
    makespan, floor = median(ours), median(bare)
    total = 2 * jobs
    return [
        Row(
            f"pipeline: makespan, {total} jobs x {ms(SLEEP)}, -j {CONCURRENCY}",
            f"{makespan:.3f} s (best {min(ours):.3f} s)",
            f"{ideal:.3f} s (ideal)",
            makespan / ideal,
            f"<= {TARGET:.2f}x",
            makespan / ideal <= TARGET,
            note=f"median of {rounds} rounds; the bare asyncio loop's floor is {floor:.3f} s "
            f"({floor / ideal:.2f}x the ideal): process start-up is part of every job",
        ),
        Row(
            "  scheduling overhead per job",
            ms((makespan - ideal) / total),
            f"{ms((floor - ideal) / total)} (bare loop)",
            None,
        ),
    ]


def _startup(quick: bool) -> list[Row]:
    runs = 5 if quick else 15
    with tempfile.TemporaryDirectory(prefix="stockade-bench-") as tmp:
        with open(os.path.join(tmp, "stockade.yaml"), "w", encoding="utf-8") as fh:
            fh.write(ONE_STEP)
        env = {**os.environ, "STOCKADE_DATA_DIR": os.path.join(tmp, "data")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        commands = {
            "exec": [str(BIN / "stockade"), "exec", "--", "true"],
            "run": [str(BIN / "stockade"), "run", "--plain"],
        }
        progress(f"warm-up, then {runs} runs of each command in turn")
        for cmd in commands.values():
            wall(cmd, env, tmp)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, cmd in commands.items():
                times[name].append(wall(cmd, env, tmp))
    exec_, run_ = median(times["exec"]), median(times["run"])
    return [
        Row(
            "pipeline: stockade run, 1 step of true",
            f"{ms(run_)} (max {ms(max(times['run']))})",
            f"{ms(exec_)} (stockade exec -- true)",
            run_ / exec_,
            note=f"the pipeline path costs {ms(run_ - exec_)} more than exec (median of {runs})",
        )
    ]


def run(quick: bool) -> list[Row]:
    return [*_makespan(quick), *_startup(quick)]
