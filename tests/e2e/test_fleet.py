"""Worker processes against a shared store: a fleet, crashes, restarts, shutdowns.

Every test here runs real ``stockade worker`` processes (the CLI, as users
run it) against a real SQLite file or PostgreSQL database, and checks the
store afterwards: every job accounted for, none run twice at once.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from stockade.engine.jobspec import adhoc_task, new_job
from stockade.store import Store, open_store
from stockade.store import schema as t
from tests.engine.procs import kill_leftovers, start_worker, stop
from tests.store import pg
from tests.store.fixtures import pg_base, pg_url, sqlite_url, store_url

__all__ = ["pg_base", "pg_url", "sqlite_url", "store_url"]  # fixtures used here


def _queue(store: Store, n: int, shell: str | None = None, **task: object) -> list[str]:
    spec = adhoc_task(argv=["/bin/true"]) if shell is None else adhoc_task(shell=shell, **task)
    return store.jobs.submit([new_job("fleet", spec) for _ in range(n)])


def _wait_running(store: Store, at_least: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while store.queries.count_by_state().get("running", 0) < at_least:
        assert time.monotonic() < deadline, "workers did not start running jobs"
        time.sleep(0.02)


def _attempts_per_job(store: Store) -> dict[str, list[str | None]]:
    query = sa.select(t.attempts.c.job_id, t.attempts.c.outcome).order_by(t.attempts.c.attempt)
    seen: dict[str, list[str | None]] = {}
    with store.db.read() as conn:
        for job_id, outcome in conn.execute(query):
            seen.setdefault(job_id, []).append(outcome)
    return seen


def test_three_workers_run_a_thousand_jobs_exactly_once(pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url)
    ids = _queue(store, 1000)
    workers = [
        start_worker(pg_url, "--slots", "2", "--burst", "--poll", "0.1", log=tmp_path / f"w{i}.log")
        for i in range(3)
    ]
    try:
        codes = [w.wait(90) for w in workers]
    finally:
        for w in workers:
            stop(w)
    assert codes == [0, 0, 0], [p.read_text()[-2000:] for p in tmp_path.glob("w*.log")]
    assert store.queries.count_by_state() == {"succeeded": 1000}
    attempts = _attempts_per_job(store)
    assert sorted(attempts) == sorted(ids)
    assert all(outcomes == ["succeeded"] for outcomes in attempts.values())
    claimed = [w.counters["claimed"] for w in store.queries.workers()]
    assert sum(claimed) == 1000 and len(claimed) == 3
    store.close()


def _crash_and_recover(url: str, tmp_path: Path, restart: pg.Cluster | None = None) -> Store:
    """Run jobs on worker A, SIGKILL it mid-run, let worker B recover everything."""
    store = open_store(url)
    ids = _queue(store, 40, "sleep 0.3", max_attempts=3, backoff={"initial": 0, "max": 0})
    a = start_worker(url, "--slots", "4", "--lease", "1.5s", "--poll", "0.1", log=tmp_path / "a")
    try:
        _wait_running(store, 4)
        a.send_signal(signal.SIGKILL)
        a.wait(10)
    finally:
        kill_leftovers(a.pid)
    held = store.queries.count_by_state().get("running", 0)
    assert held >= 1
    store.close()
    if restart is not None:
        restart.restart(down_for=1.0)
    b = start_worker(url, "--slots", "4", "--lease", "1.5s", "--poll", "0.1", "--burst",
                     log=tmp_path / "b")  # fmt: skip
    try:
        assert b.wait(90) == 0, (tmp_path / "b").read_text()[-3000:]
    finally:
        stop(b)
    store = open_store(url)
    assert store.queries.count_by_state() == {"succeeded": 40}
    attempts = _attempts_per_job(store)
    assert sorted(attempts) == sorted(ids)
    lost = sum(outcomes.count("lost") for outcomes in attempts.values())
    assert lost == held
    assert all(outcomes[-1] == "succeeded" for outcomes in attempts.values())
    return store


def test_crash_a_worker_and_another_recovers_its_jobs(store_url: str, tmp_path: Path) -> None:
    _crash_and_recover(store_url, tmp_path).close()


def test_crash_with_the_database_restarted_mid_run(tmp_path: Path) -> None:
    with pg.throwaway() as cluster:
        _crash_and_recover(cluster.url, tmp_path, restart=cluster).close()


def test_database_restart_pauses_a_worker_instead_of_killing_it(tmp_path: Path) -> None:
    with pg.throwaway() as cluster:
        store = open_store(cluster.url)
        _queue(store, 30, "sleep 0.2")
        w = start_worker(cluster.url, "--slots", "2", "--poll", "0.1", "--burst",
                         log=tmp_path / "w")  # fmt: skip
        try:
            # Restart only once the worker is up and running jobs: a worker
            # that cannot reach its database at start-up stops with one line
            # (by design); this test is about a restart in the middle of work.
            _wait_running(store, 1)
            store.close()
            cluster.restart(down_for=1.5)
            assert w.wait(90) == 0, (tmp_path / "w").read_text()[-3000:]
        finally:
            stop(w)
        store = open_store(cluster.url)
        assert store.queries.count_by_state() == {"succeeded": 30}
        assert "retrying" in (tmp_path / "w").read_text()
        store.close()


@pytest.mark.parametrize("case", ["drain", "deadline", "second_signal"])
def test_sigterm_drains_and_leaves_the_queue_intact(
    store_url: str, tmp_path: Path, case: str
) -> None:
    store = open_store(store_url)
    shell = "echo started; sleep 0.6; echo done" if case == "drain" else "echo started; sleep 30"
    running = _queue(store, 2, shell, kill_grace=0.2)
    waiting = _queue(store, 5, "echo later")
    drain = {"drain": "20s", "deadline": "0.5s", "second_signal": "60s"}[case]
    w = start_worker(store_url, "--slots", "2", "--drain-timeout", drain, log=tmp_path / "w")
    try:
        # Started, not only claimed: a claim whose answer the worker has not
        # taken yet when the signal comes is given back unspent, as it must be.
        deadline = time.monotonic() + 20
        while not all(store.queries.logs(job) for job in running):
            assert time.monotonic() < deadline, "the worker did not start its two jobs"
            time.sleep(0.02)
        began = time.monotonic()
        w.send_signal(signal.SIGTERM)
        if case == "second_signal":
            time.sleep(0.2)
            w.send_signal(signal.SIGTERM)
        assert w.wait(30) == 0, (tmp_path / "w").read_text()[-3000:]
        took = time.monotonic() - began
    finally:
        stop(w)
    jobs = {j.id: j for j in store.queries.jobs(limit=None)}
    if case == "drain":
        assert all(jobs[j].state.value == "succeeded" for j in running)
        assert store.queries.outputs(running[0]) == {"stdout": "started\ndone\n"}
    else:
        assert took < 10
        assert all((jobs[j].state.value, jobs[j].attempts) == ("queued", 0) for j in running)
    assert all((jobs[j].state.value, jobs[j].attempts) == ("queued", 0) for j in waiting)
    assert store.queries.count_by_state().get("running", 0) == 0
    store.close()
