"""A real ``stockade worker`` process, on both stores, given jobs that make
their output files hostile: each such job fails with ``output_error`` and
the worker's other slot goes on running jobs.

A FIFO at the ``file:`` output path once froze the worker's event loop in a
blocking open: nothing ran in either slot and SIGTERM did nothing. The
worker is a child process here so that a freeze fails the test at its
deadline instead of hanging it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from stockade.store import Store
from tests.engine.helpers import state, submit
from tests.engine.procs import kill_leftovers, start_worker, stop

DONE = ("succeeded", "failed", "cancelled")
DEADLINE = 60.0  # generous: every job takes milliseconds


def test_hostile_output_files_fail_their_jobs_and_the_worker_runs_on(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    hostile = {
        submit(store, "mkfifo out.json", output_format="file", output_path="out.json",
               workdir=str(workspace)): "output file 'out.json' is a FIFO",
        submit(store, 'rm "$STOCKADE_OUTPUT"; mkfifo "$STOCKADE_OUTPUT"'):
            "$STOCKADE_OUTPUT is a FIFO",
        submit(store, 'truncate -s 1G "$STOCKADE_OUTPUT"'):
            f"$STOCKADE_OUTPUT is {1 << 30} bytes, over the limit of {1 << 20} bytes",
        submit(store, "truncate -s 1G big.json", output_format="file", output_path="big.json",
               workdir=str(workspace)): f"output file 'big.json' is {1 << 30} bytes",
    }  # fmt: skip
    # Never read back by stockade (state comes from save-state): no effect.
    state_fifo = submit(store, 'rm "$STOCKADE_STATE"; mkfifo "$STOCKADE_STATE"')
    quick = [submit(store, f'echo "n={i}" >> "$STOCKADE_OUTPUT"') for i in range(8)]
    jobs = [*hostile, state_fifo, *quick]
    worker = start_worker(store_url, "--slots", "2", "--poll", "0.05", log=tmp_path / "w.log")
    try:
        deadline = time.monotonic() + DEADLINE
        while not all(state(store, job) in DONE for job in jobs):
            if time.monotonic() > deadline:
                left = {job: state(store, job) for job in jobs if state(store, job) not in DONE}
                pytest.fail(f"the worker did not finish its jobs within {DEADLINE}s: {left}")
            time.sleep(0.05)
    finally:
        code = stop(worker)
        kill_leftovers(worker.pid)
    assert code == 0, (tmp_path / "w.log").read_text()
    for job, message in hostile.items():
        (attempt,) = store.queries.attempts(job)
        assert (attempt.outcome, attempt.reason) == ("failed", "output_error"), attempt
        assert message in (attempt.error or ""), attempt.error
    assert state(store, state_fifo) == "succeeded"
    for i, job in enumerate(quick):
        assert state(store, job) == "succeeded"
        assert store.queries.outputs(job) == {"stdout": "", "n": str(i)}
