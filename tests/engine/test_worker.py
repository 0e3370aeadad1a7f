"""The worker against real stores: runs, retries, logs, cancels, drains."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from stockade.engine.worker import Worker
from stockade.store import Store
from stockade.store import schema as t
from tests.engine import helpers
from tests.engine.helpers import gate, state, submit, until, with_worker

DONE = ("succeeded", "failed", "cancelled")


@pytest.fixture(autouse=True, params=[False, True], ids=["store-thread", "store-process"])
def store_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Each behaviour once with ends and claims recorded on the worker's store
    thread and once in its store process (the CLI's default)."""
    monkeypatch.setitem(helpers.WORKER_DEFAULTS, "store_process", request.param)
    return bool(request.param)


def test_runs_jobs_and_applies_the_policy(
    store: Store, store_url: str, store_process: bool
) -> None:
    ok = submit(store, 'echo "hi $INPUT_NAME"', input={"name": "x"})
    bad = submit(store, "exit 3")
    flaky = submit(store, "exit 75", max_attempts=2, backoff={"initial": 0.05, "max": 0.05})
    slow = submit(store, "sleep 5", timeout=0.2, kill_grace=0.1)

    async def body(worker: Worker) -> None:
        await until(lambda: all(state(store, j) in DONE for j in (ok, bad, flaky, slow)))
        assert (worker.astore.process is not None) == store_process

    worker = with_worker(store_url, body)
    q = store.queries
    assert q.job(ok).state.value == "succeeded"
    assert q.outputs(ok) == {"stdout": "hi x\n"}
    assert (q.job(bad).state.value, q.job(bad).exit_code) == ("failed", 3)
    assert [a.outcome for a in q.attempts(flaky)] == ["retryable", "retryable"]
    assert (q.job(slow).state.value, q.job(slow).outcome) == ("failed", "timed_out")
    counts = worker.counters
    assert (counts.claimed, counts.succeeded, counts.failed, counts.retried) == (5, 1, 3, 1)
    assert counts.timed_out == 1
    (row,) = q.workers()
    assert row.stopped_at is not None and row.counters["claimed"] == 5
    assert worker.astore.process is None  # stopped with the worker


def test_logs_reach_the_store_while_the_job_runs(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    job = submit(store, f"echo start; echo oops >&2; {gate(tmp_path / 'go')}; echo end")

    async def body(worker: Worker) -> None:
        await until(lambda: state(store, job) == "running")
        await until(lambda: len(store.queries.logs(job)) >= 2)
        assert state(store, job) == "running"  # stored while the job waits, not at its end
        (tmp_path / "go").touch()  # seen while it runs: now it may end
        await until(lambda: state(store, job) == "succeeded")

    with_worker(store_url, body)
    chunks = store.queries.logs(job)
    assert "".join(c.text for c in chunks if c.stream == "stdout") == "start\nend\n"
    assert [c.text for c in chunks if c.stream == "stderr"] == ["oops\n"]
    # The store holds the log; the worker writes no second copy to its disk.
    assert not list((Path(os.environ["STOCKADE_DATA_DIR"]) / "logs").glob(f"{job}.*"))


def test_cancel_running_and_queued_jobs(store: Store, store_url: str) -> None:
    running = submit(store, "sleep 30", kill_grace=0.2)
    later = submit(store, "echo never", delay=60)

    async def body(worker: Worker) -> None:
        await until(lambda: state(store, running) == "running")
        assert store.jobs.cancel([running, later]) == {running: "cancelling", later: "cancelled"}
        began = time.monotonic()
        await until(lambda: state(store, running) == "cancelled", timeout=15)
        assert time.monotonic() - began < 10  # poll 0.05 s + kill grace 0.2 s, with slack for load

    worker = with_worker(store_url, body)
    assert store.queries.attempts(later) == []
    assert store.queries.job(running).outcome == "cancelled"
    assert worker.counters.cancelled == 1


def test_drain_lets_running_jobs_finish_and_leaves_the_queue(store: Store, store_url: str) -> None:
    first = submit(store, "echo started; sleep 1; echo done")
    second = submit(store, "echo second")

    async def body(worker: Worker) -> None:
        # "running" in the store is not enough: a job claimed ahead for a busy
        # slot is "running" there too, and the drain rightly hands it back.
        # Wait until its process has printed.
        await until(lambda: printed(store, first, "started"))

    with_worker(store_url, body, slots=1, drain_timeout=10)
    assert state(store, first) == "succeeded"
    assert state(store, second) == "queued"
    assert store.queries.job(second).attempts == 0


def test_drain_deadline_returns_jobs_without_spending_attempts(
    store: Store, store_url: str
) -> None:
    job = submit(store, "echo started; sleep 30", kill_grace=0.2)

    async def body(worker: Worker) -> None:
        await until(lambda: printed(store, job, "started"))

    began = time.monotonic()
    worker = with_worker(store_url, body, drain_timeout=0.3)
    assert time.monotonic() - began < 5
    record = store.queries.job(job)
    assert (record.state.value, record.attempts, record.runs) == ("queued", 0, 1)
    (attempt,) = store.queries.attempts(job)
    assert (attempt.outcome, attempt.reason) == ("cancelled", "worker_shutdown")
    assert worker.counters.released == 1


def test_second_stop_skips_the_drain(store: Store, store_url: str) -> None:
    job = submit(store, "sleep 30", kill_grace=0.2)

    async def body(worker: Worker) -> None:
        await until(lambda: state(store, job) == "running")

    began = time.monotonic()
    with_worker(store_url, body, drain_timeout=60, stop_twice=True)
    assert time.monotonic() - began < 5
    assert state(store, job) == "queued"


def test_a_superseded_attempt_is_stopped_and_not_recorded(store: Store, store_url: str) -> None:
    job = submit(store, "echo started; sleep 1; echo late", backoff={"initial": 0, "max": 0})

    async def body(worker: Worker) -> None:
        await until(lambda: printed(store, job, "started"))
        with store.db.transaction() as conn:  # as if this worker had missed its heartbeats
            conn.execute(sa.update(t.jobs).values(lease_expires=0))
        assert store.jobs.recover_expired() == [(job, store.queries.job(job).state.QUEUED)]
        await until(lambda: worker.counters.superseded == 1, timeout=5)
        await until(lambda: state(store, job) == "succeeded", timeout=10)

    worker = with_worker(store_url, body, lease=0.6)
    outcomes = [(a.attempt, a.outcome) for a in store.queries.attempts(job)]
    assert outcomes == [(1, "lost"), (2, "succeeded")]
    assert worker.counters.succeeded == 1


def test_a_claim_the_worker_never_heard_of_expires_and_is_recovered(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    busy = submit(store, f"echo started; {gate(tmp_path / 'go')}")

    async def body(worker: Worker) -> None:
        # The one slot is busy and nothing is claimed ahead: the worker claims
        # nothing more meanwhile.
        await until(lambda: printed(store, busy, "started"))
        job = submit(store, "echo ran", backoff={"initial": 0, "max": 0})
        # As if the answer to this worker's claim had been lost on the way:
        # the store lists the job as the worker's, the worker does not know it.
        assert [c.job_id for c in store.jobs.claim(worker.id, 1, 0.6)] == [job]
        first = [(1, "lost")]
        await until(
            lambda: [(a.attempt, a.outcome) for a in store.queries.attempts(job)][:1] == first,
            timeout=40, what="the lost claim's attempt recorded lost",
        )  # fmt: skip
        (tmp_path / "go").touch()  # recovered while the slot was busy: now free it
        await until(lambda: state(store, job) == "succeeded", timeout=40)
        outcomes = [(a.attempt, a.outcome) for a in store.queries.attempts(job)]
        assert outcomes == [(1, "lost"), (2, "succeeded")]

    with_worker(store_url, body, lease=0.6, slots=1, prefetch=0)
    assert state(store, busy) == "succeeded"


def test_a_worker_of_long_jobs_claims_none_ahead(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    # The buffer follows the pace: a slot busy for a while starts no job in
    # the next 20 ms, so the queued jobs stay free for other workers.
    long = submit(store, f"echo started; {gate(tmp_path / 'go')}")
    others = [submit(store, "true") for _ in range(3)]

    async def body(worker: Worker) -> None:
        await until(lambda: printed(store, long, "started"))
        await asyncio.sleep(0.3)  # claim rounds happen meanwhile
        assert [state(store, j) for j in others] == ["queued"] * 3
        (tmp_path / "go").touch()

    with_worker(store_url, body, slots=1)
    assert state(store, long) == "succeeded"


def test_a_lone_end_is_recorded_without_the_group_commit_wait(store: Store, store_url: str) -> None:
    # The linger waits for other ends only while other jobs are in flight: a
    # worker's only job is recorded at once, not record_linger later.
    job = submit(store, "true")

    async def body(worker: Worker) -> None:
        # Well under the linger, with room for a loaded machine.
        await until(lambda: state(store, job) == "succeeded", timeout=12.0)

    with_worker(store_url, body, record_linger=30.0)


def test_the_recorder_measures_how_long_a_flush_takes(store: Store, store_url: str) -> None:
    """The buffer's horizon follows the store's measured flush time: with a
    50 ms linger, a flush of an end while other jobs run takes at least that."""
    from stockade.engine.jobspec import adhoc_task, new_job

    async def body(worker: Worker) -> None:
        worker.recorder.refill = 0.0
        # Four jobs at once in four slots: the short one's end waits out the
        # linger for the others (still running for a second more). Jobs of one
        # length could all end before the first flush began, with nothing left
        # to linger for.
        short, long = adhoc_task(shell="sleep 0.2"), adhoc_task(shell="sleep 1.5")
        jobs = store.jobs.submit([new_job("t", t) for t in (short, long, long, long)])
        # The measure is read as the run goes: quick flushes after the lingered
        # one (the worker's housekeeping records too) decay it again.
        highest = 0.0

        def ended() -> bool:
            nonlocal highest
            highest = max(highest, worker.recorder.refill)
            return all(state(store, j) == "succeeded" for j in jobs) and not worker.recorder.busy

        await until(ended)
        # At least a fifth of one linger at its highest, and never absurd.
        assert 0.01 <= highest < 1.0

    with_worker(store_url, body, slots=4, record_linger=0.05)


def printed(store: Store, job_id: str, text: str) -> bool:
    """Whether the job's process has printed ``text`` (so it really started:
    "running" in the store also covers a job claimed ahead for a busy slot)."""
    return any(text in chunk.text for chunk in store.queries.logs(job_id))
