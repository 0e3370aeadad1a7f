"""What recording a pipeline run in the store costs its makespan.

The pipeline of ``bench_pipeline`` (100 ``build`` jobs, then 100 ``test``
jobs needing the whole build step, every job ``sleep 0.05``, concurrency 4;
ideal 2.5 s) executed by the in-process scheduler twice over: bare (no
observer: the baseline), and as ``stockade run`` executes it, through
:class:`stockade.engine.runs.PipelineRun`, every job, attempt, log chunk and
step change recorded in a SQLite store on disk. Alternating, three times
each; medians. Target: the recorded makespan within 1.05x of the bare one
(the scheduler's own distance to the ideal is ``bench_pipeline``'s figure;
the note gives both against the ideal).
Informational: the same with 200 ``/bin/true`` jobs two at a time, all
overhead, the worst case for recording (a CPU-bound scheduler loop pays the
recorder's CPU in full).
"""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
import time

from benchmarks import Row, median, ms, progress
from stockade.config import loads
from stockade.engine.runs import PipelineRun, RunOptions
from stockade.pipeline.scheduler import Scheduler
from stockade.sandbox.proctree import enable_subreaper
from stockade.store import open_store

TARGET = 1.05
SLEEP = 0.05
STAGE = 100
CONCURRENCY = 4
IDEAL = 2 * math.ceil(STAGE / CONCURRENCY) * SLEEP


def _config(jobs: int, command: str = "/bin/true", concurrency: int = 2) -> str:
    items = ", ".join(f"j{n}" for n in range(jobs))
    return f"""
pipelines:
  bench:
    concurrency: {concurrency}
    steps:
      each:
        for_each: [{items}]
        command: [{command}]
"""


def stages(jobs: int = STAGE, concurrency: int = CONCURRENCY) -> str:
    """A two-stage pipeline: ``jobs`` sleeps, then ``jobs`` more once all of them
    are done (also the fleet benchmark's pipeline)."""
    items = ", ".join(f"j{n}" for n in range(jobs))
    return f"""
pipelines:
  bench:
    concurrency: {concurrency}
    steps:
      build:
        for_each: [{items}]
        command: [sleep, "{SLEEP}"]
      test:
        needs: [build]
        for_each: [{items}]
        command: [sleep, "{SLEEP}"]
"""


async def _bare(text: str, data_dir: str) -> float:
    config = loads(text, env={})
    name, spec = config.pipeline(None)
    scheduler = Scheduler(config, name, spec, run_id=f"bare{time.time_ns()}", data_dir=data_dir)
    started = time.perf_counter()
    run = await scheduler.execute()
    assert run.status.value == "succeeded"
    return time.perf_counter() - started


async def _recorded(text: str, data_dir: str) -> float:
    config = loads(text, env={})
    name, spec = config.pipeline(None)
    store = open_store(None, data_dir)
    pipeline_run = PipelineRun(store, config, name, spec, options=RunOptions(), data_dir=data_dir)
    pipeline_run.create()
    started = time.perf_counter()
    run = await pipeline_run.execute()  # its last write included
    took = time.perf_counter() - started
    assert run.status.value == "succeeded"
    return took


def _measure(text: str, tmp: str, label: str) -> tuple[float, float]:
    """Medians of three alternating rounds: (bare, recorded) seconds."""
    bare: list[float] = []
    recorded: list[float] = []
    for round_ in range(3):
        progress(f"runs: {label}, round {round_ + 1}/3")
        bare.append(asyncio.run(_bare(text, os.path.join(tmp, "bare"))))
        recorded.append(asyncio.run(_recorded(text, os.path.join(tmp, "rec"))))
    return median(bare), median(recorded)


def run(quick: bool) -> list[Row]:
    enable_subreaper()
    rows = []
    with tempfile.TemporaryDirectory(prefix="stockade-bench-runs-") as tmp:
        os.chdir(tmp)
        base, figure = _measure(stages(), tmp, "2x100 sleeps")
        rows.append(
            Row(
                "pipeline makespan, 200 jobs recorded",
                ms(figure),
                f"{ms(base)} bare",
                figure / base,
                f"<= {TARGET:.2f}x",
                figure / base <= TARGET,
                note=f"vs the ideal {ms(IDEAL)}: recorded {figure / IDEAL:.2f}x, "
                f"bare {base / IDEAL:.2f}x",
            )
        )
        jobs = 60 if quick else 200
        base, figure = _measure(_config(jobs), tmp, f"{jobs} /bin/true")
        rows.append(
            Row(
                f"recorded vs bare, {jobs} /bin/true", ms(figure), ms(base) + " bare", figure / base
            )
        )
    return rows
