"""A worker SIGKILLed again and again while it runs 200 jobs: no job runs
twice at once, none is lost, none is recorded twice; the same with
``--reattach``, where a restarted worker takes its jobs over still running. Real worker processes,
on SQLite: it takes a minute or more, and the fence and the sweep it proves
are tested on both stores, one kill at a time, in tests/engine/test_fencing.py.

Each attempt first looks for a live process of an earlier attempt of its
own job (by the pid that attempt recorded and the job id in that process's
environment, so a reused pid is not mistaken for it) and notes any it finds.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from stockade.engine.jobspec import adhoc_task, new_job
from stockade.store import Store, open_store
from tests.engine.procs import kill_leftovers, start_worker, stop
from tests.store.fixtures import sqlite_url

__all__ = ["sqlite_url"]  # fixtures used here

JOB = r"""D={d}; J=$STOCKADE_JOB_ID
for f in "$D/$J".pids.*; do
  [ -e "$f" ] || continue
  p=$(cat "$f")
  if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "STOCKADE_JOB_ID=$J"; then
    echo "$J $p" >> "$D/overlap"
  fi
done
echo $$ > "$D/$J.pids.$STOCKADE_ATTEMPT"
sleep 2
echo "$J" >> "$D/done"
"""

JOBS, KILLS = 200, 20


def _started(d: Path) -> int:
    return sum(1 for _ in d.glob("*.pids.*"))


@pytest.mark.parametrize("reattach", [False, True], ids=["recover", "reattach"])
def test_twenty_worker_kills_during_two_hundred_jobs(
    sqlite_url: str, tmp_path: Path, reattach: bool
) -> None:
    store = open_store(sqlite_url)
    try:
        _chaos(store, sqlite_url, tmp_path, reattach)
    finally:
        store.close()


def _chaos(store: Store, store_url: str, tmp_path: Path, reattach: bool) -> None:
    task = adhoc_task(
        shell=JOB.format(d=tmp_path), max_attempts=50, backoff={"initial": 0, "max": 0}
    )
    ids = store.jobs.submit([new_job("chaos", task) for _ in range(JOBS)])
    rand = random.Random(4711)
    # Jobs outlast a worker's restart: an attempt its dead worker left running
    # would still run when the restarted worker recovers the job and retries it.
    # 32 slots: each kill hits as many jobs in flight as a 2-CPU machine runs
    # at ease, and the 200 jobs' own 2 s each take half the wall time of 16.
    args: tuple[str, ...] = ("--slots", "32", "--poll", "0.1", "--lease", "5s", "--name", "chaos")
    if reattach:  # the jobs a killed worker ran are taken over by the next, still running
        args += ("--reattach", "--data-dir", str(tmp_path / "data"))
    killed: list[int] = []
    try:
        for kill in range(KILLS):
            proc = start_worker(store_url, *args, log=tmp_path / f"worker.{kill}.log")
            killed.append(proc.pid)
            try:
                seen = _started(tmp_path)
                deadline = time.monotonic() + 30
                while (
                    _started(tmp_path) == seen
                    and time.monotonic() < deadline
                    and store.queries.count_by_state().get("queued")
                ):
                    time.sleep(0.02)  # killed while its jobs run, not before (if any is left)
                time.sleep(rand.uniform(0.1, 0.5))
            finally:
                proc.send_signal(signal.SIGKILL)  # its fence, not the test, kills its jobs
                proc.wait(10)
        proc = start_worker(store_url, *args, "--burst", log=tmp_path / "worker.last.log")
        try:
            assert proc.wait(120) == 0
        finally:
            stop(proc)
    finally:
        for pid in killed:
            kill_leftovers(pid)
    assert not (tmp_path / "overlap").exists(), (tmp_path / "overlap").read_text()
    jobs = {job.id: job for job in store.queries.jobs(limit=None)}
    assert {jobs[i].state.value for i in ids} == {"succeeded"}
    for job_id in ids:
        outcomes = [a.outcome for a in store.queries.attempts(job_id)]
        assert outcomes.count("succeeded") == 1 and outcomes[-1] == "succeeded", outcomes
        assert set(outcomes[:-1]) <= {"lost"}, outcomes
