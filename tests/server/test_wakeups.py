"""Log-stream wakeups from PostgreSQL notifications, on a real server: new log
chunks, a finished job and a cancelled queued job each wake the streams
following that job, and only those."""

from __future__ import annotations

import asyncio
import time

from stockade.runner.result import Outcome
from stockade.server.wakeups import LISTENING_POLL, POLL, Wakeups
from stockade.store import Store, open_store
from tests.store.helpers import new, result


async def _listening(wakeups: Wakeups) -> None:
    deadline = time.monotonic() + 10
    while not wakeups.listening:
        assert time.monotonic() < deadline, "the listener did not connect"
        await asyncio.sleep(0.05)


async def _woken(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), 10)


def _chunk(job_id: str, text: str) -> dict[str, object]:
    return {"job_id": job_id, "attempt": 1, "stream": "stdout", "text": text, "time": 1.0}


def test_notifications_wake_the_streams_of_their_job(pg_url: str) -> None:
    store: Store = open_store(pg_url)
    first, second, queued = store.jobs.submit([new(input=1), new(input=2), new(input=3)])
    wakeups = Wakeups()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        assert wakeups.interval() == POLL  # not listening yet: streams poll
        wakeups.start(store.db.url, loop)
        await _listening(wakeups)
        assert wakeups.interval() == LISTENING_POLL
        with wakeups.follow(first) as a, wakeups.follow(second) as b, wakeups.follow(queued) as c:
            a.clear(), b.clear(), c.clear()  # the listener's wake-everyone on connecting
            await loop.run_in_executor(None, store.journal.append_logs, [_chunk(first, "hi")])
            await _woken(a)
            assert not b.is_set() and not c.is_set()
            a.clear()
            claims = await loop.run_in_executor(None, store.jobs.claim, "w", 2, 30.0)
            assert {claim.job_id for claim in claims} == {first, second}
            done = next(claim for claim in claims if claim.job_id == second)
            await loop.run_in_executor(
                None, store.jobs.finish, done, result(done, Outcome.SUCCEEDED)
            )
            await _woken(b)
            assert not a.is_set() and not c.is_set()
            await loop.run_in_executor(None, store.jobs.cancel, [queued])
            await _woken(c)
            assert not a.is_set()

    try:
        asyncio.run(scenario())
    finally:
        wakeups.stop()
        store.close()
    assert wakeups.following() == 0  # every stream that left was forgotten


def test_a_pipeline_runs_writes_wake_the_streams_of_its_jobs(pg_url: str) -> None:
    # A run's jobs are written by its recorder, not the job manager: its
    # batches must wake followers on PostgreSQL just the same.
    from stockade.store import JobState
    from stockade.store.runs import AttemptWrite, JobWrite, RunBatch

    store: Store = open_store(pg_url)
    store.runs.create("r1", "p", options={}, steps={})
    wakeups = Wakeups()

    def job(state: JobState, stored: JobState | None) -> JobWrite:
        return JobWrite(
            id="rj1", step="s", item=None, state=state, stored=stored, task="t",
            spec={"version": 1}, attempts=1, started_at=1.0,
            attempt_rows=[AttemptWrite(1, 1.0, new=stored is None)],
        )  # fmt: skip

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        wakeups.start(store.db.url, loop)
        await _listening(wakeups)
        with wakeups.follow("rj1") as woken, wakeups.follow("other") as other:
            woken.clear(), other.clear()
            born = RunBatch("r1", jobs=[job(JobState.RUNNING, None)], logs=[_chunk("rj1", "hi")])
            await loop.run_in_executor(None, store.runs.record, born)
            await _woken(woken)
            assert not other.is_set()
            woken.clear()
            ended = RunBatch("r1", jobs=[job(JobState.SUCCEEDED, JobState.RUNNING)])
            await loop.run_in_executor(None, store.runs.record, ended)
            await _woken(woken)
            assert not other.is_set()

    try:
        asyncio.run(scenario())
    finally:
        wakeups.stop()
        store.close()
