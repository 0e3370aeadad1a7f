"""What recording a pipeline run in the store costs its makespan.

A pipeline of 200 ``/bin/true`` jobs (one ``for_each`` step, two at a time:
all overhead, the worst case for recording) executed by the in-process
scheduler twice over: bare (no observer: the baseline), and as ``stockade
run`` executes it, through :class:`stockade.engine.runs.PipelineRun`, every
job, attempt, log chunk and step change recorded in a SQLite store on disk.
Alternating, three times each; medians. Target: the recorded makespan within
1.05x of the bare one.
"""

from __future__ import annotations

import asyncio
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
CONCURRENCY = 2


def _config(jobs: int) -> str:
    items = ", ".join(f"j{n}" for n in range(jobs))
    return f"""
pipelines:
  bench:
    concurrency: {CONCURRENCY}
    steps:
      each:
        for_each: [{items}]
        command: [/bin/true]
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


def run(quick: bool) -> list[Row]:
    enable_subreaper()
    jobs = 60 if quick else 200
    text = _config(jobs)
    bare: list[float] = []
    recorded: list[float] = []
    with tempfile.TemporaryDirectory(prefix="stockade-bench-runs-") as tmp:
        os.chdir(tmp)
        for round_ in range(3):
            progress(f"runs: round {round_ + 1}/3 ({jobs} jobs)")
            bare.append(asyncio.run(_bare(text, os.path.join(tmp, "bare"))))
            recorded.append(asyncio.run(_recorded(text, os.path.join(tmp, "rec"))))
    base, figure = median(bare), median(recorded)
    ratio = figure / base
    return [
        Row(
            f"pipeline makespan, {jobs} jobs recorded",
            ms(figure),
            ms(base) + " bare",
            ratio,
            f"<= {TARGET:.2f}x",
            ratio <= TARGET,
        )
    ]
