"""What running a pipeline's jobs on workers (``stockade run --fleet``) costs
its makespan.

A two-stage pipeline (``STAGE`` ``build`` jobs, then ``STAGE`` ``test`` jobs
needing the whole build step, every job ``sleep 0.05``, four at a time) run
by ``stockade run`` twice over, in one SQLite store: in process (the
baseline), and with ``--fleet`` on two ``stockade worker`` processes of two
slots each (four slots in all). Alternating, three times each (once with
``--quick``); medians. Informational: each fleet job costs a queue
round-trip (the run's submit, a worker's claim, the run's next read of the
job, every ``POLL`` seconds), which the in-process run does not pay.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import Row, median, ms, progress
from benchmarks.bench_runs import stages
from stockade.engine.fleetrun import POLL
from stockade.store import open_store

STAGE = 40
STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


def _run(tmp: Path, env: dict[str, str], *args: str) -> float:
    """Seconds one ``stockade run`` took, start to exit."""
    started = time.perf_counter()
    done = subprocess.run(
        [*STOCKADE, "run", "--plain", *args], cwd=tmp, env=env, capture_output=True, check=False
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace")[-2000:])
    return took


def run(quick: bool) -> list[Row]:
    jobs = 10 if quick else STAGE
    rounds = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="stockade-bench-fleet-") as name:
        tmp = Path(name)
        (tmp / "stockade.yaml").write_text(stages(jobs, concurrency=4))
        url = f"sqlite:///{tmp / 'store.db'}"
        open_store(url).close()
        env = dict(os.environ, STOCKADE_DATABASE_URL=url, STOCKADE_DATA_DIR=str(tmp / "data"))
        worker = [*STOCKADE, "worker", "--slots", "2", "--poll", "0.1"]
        quiet = subprocess.DEVNULL
        workers = [
            subprocess.Popen(worker, cwd=tmp, env=env, stdout=quiet, stderr=quiet) for _ in range(2)
        ]
        here: list[float] = []
        fleet: list[float] = []
        try:
            for round_ in range(rounds):
                progress(f"fleet: 2x{jobs} sleeps, round {round_ + 1}/{rounds}")
                here.append(_run(tmp, env))
                fleet.append(_run(tmp, env, "--fleet"))
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(60)
    base, figure = median(here), median(fleet)
    per_wave = (figure - base) / (2 * jobs / 4)
    return [
        Row(
            f"pipeline makespan, 2x{jobs} jobs on 2 workers",
            ms(figure),
            f"{ms(base)} in process",
            figure / base,
            note=f"{'+' if per_wave >= 0 else '-'}{ms(abs(per_wave))} per wave of 4 jobs"
            f" (the run reads every {POLL:g} s); noisy on a loaded machine",
        )
    ]
