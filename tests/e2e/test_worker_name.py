"""One live worker per ``--name``: real ``stockade worker`` processes on both stores.

A second worker under a live worker's name is refused and changes nothing;
a worker restarted under the name of one that was SIGKILLed recovers that
one's jobs at once, without waiting for its lease to expire.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from stockade.engine.jobspec import adhoc_task, new_job
from stockade.store import Store, open_store
from tests.engine.helpers import gate
from tests.engine.procs import STOCKADE, kill_leftovers, start_worker, stop
from tests.store.fixtures import pg_base, pg_url, sqlite_url, store_url

__all__ = ["pg_base", "pg_url", "sqlite_url", "store_url"]  # fixtures used here


def _submit(store: Store, shell: str) -> str:
    task = adhoc_task(shell=shell, max_attempts=3, backoff={"initial": 0, "max": 0})
    return store.jobs.submit([new_job("named", task)])[0]


def _wait(store: Store, job_id: str, check: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check(store.queries.job(job_id)):  # type: ignore[operator]
        assert time.monotonic() < deadline, f"job {job_id} never got there"
        time.sleep(0.02)


def test_a_second_live_worker_with_the_same_name_is_refused(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    # The job runs until the second worker has been refused.
    job_id = _submit(store, f"echo begun; {gate(tmp_path / 'go')}; echo ended")
    first = start_worker(store_url, "--name", "builder", "--poll", "0.05", log=tmp_path / "a")
    try:
        _wait(store, job_id, lambda j: j.state.value == "running")
        workers_before = store.queries.workers()
        second = subprocess.run(
            [*STOCKADE, "worker", "--name", "builder", "--poll", "0.05"],
            env=dict(os.environ, STOCKADE_DATABASE_URL=store_url),
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert second.returncode == 1
        assert second.stderr.splitlines() == [
            f"stockade: error: worker name 'builder' is in use by a live worker (pid {first.pid}"
            f" on {workers_before[0].hostname}): stop that worker first or choose another --name"
        ]
        # The first worker's own heartbeat moves last_seen; the rest is its registration.
        assert [(w.id, w.pid, w.pid_start, w.started_at) for w in store.queries.workers()] == [
            (w.id, w.pid, w.pid_start, w.started_at) for w in workers_before
        ]
        (tmp_path / "go").touch()
        _wait(store, job_id, lambda j: j.state.value == "succeeded")
    finally:
        assert stop(first) == 0, (tmp_path / "a").read_text()[-3000:]
    attempts = store.queries.attempts(job_id)
    assert [(a.attempt, a.outcome) for a in attempts] == [(1, "succeeded")]
    assert "".join(c.text for c in store.queries.logs(job_id)) == "begun\nended\n"
    store.close()


def test_a_worker_restarted_after_sigkill_recovers_its_jobs_at_once(
    store_url: str, tmp_path: Path
) -> None:
    store = open_store(store_url)
    job_id = _submit(store, "echo run; sleep 60")
    # A lease of a minute: recovery by lease expiry would take that long.
    args = ("--name", "builder", "--lease", "60s", "--poll", "0.05")
    first = start_worker(store_url, *args, log=tmp_path / "a")
    try:
        _wait(store, job_id, lambda j: j.state.value == "running")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        kill_leftovers(first.pid)
    began = time.monotonic()
    again = start_worker(store_url, *args, log=tmp_path / "b")
    try:
        _wait(store, job_id, lambda j: j.attempts == 2 and j.state.value == "running", timeout=45)
        took = time.monotonic() - began
        store.jobs.cancel([job_id])
        _wait(store, job_id, lambda j: j.state.value == "cancelled")
    finally:
        assert stop(again) == 0, (tmp_path / "b").read_text()[-3000:]
    assert took < 45  # well before the lease (60 s) could expire
    outcomes = [(a.attempt, a.outcome, a.reason) for a in store.queries.attempts(job_id)]
    assert outcomes[0] == (1, "lost", "worker_restarted")
    assert "recovered 1 job(s)" in (tmp_path / "b").read_text()
    store.close()
