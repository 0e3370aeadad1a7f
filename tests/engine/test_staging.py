"""Jobs prepared ahead for a busy slot and launched when it frees (``Turn``).

A job is staged only when the worker claimed it ahead, which it does at a
fast pace of job starts; these tests give the worker a claim-ahead
policy whose clock stands still at a fast pace so that a one-slot worker with a second-long job
stages the next one. Real stores, real processes.
"""

from __future__ import annotations

from stockade.engine.prefetch import Prefetch
from stockade.engine.worker import Worker
from stockade.errors import SetupError
from stockade.sandbox.base import LaunchRequest, ProcessHandle, Sandbox
from stockade.sandbox.local import LocalSandbox
from stockade.store import Store
from tests.engine.helpers import state, submit, until, with_worker


def _fast_pace() -> Prefetch:
    """A claim-ahead policy whose clock stands still after 100 starts: the
    pace of 1,000 jobs a second, for as long as the test runs."""
    pace = Prefetch(64, clock=lambda: 0.0)
    for _ in range(100):
        pace.started()
    return pace


def _printed(store: Store, job_id: str, text: str) -> bool:
    return any(text in chunk.text for chunk in store.queries.logs(job_id))


def _staged(worker: Worker, job_id: str) -> bool:
    return job_id in worker.staged()


async def _one_staged(worker: Worker, store: Store, first_line: str) -> tuple[str, str]:
    """Queue ``first_line`` (which must print "started") and ``echo second``;
    return their ids once the first runs and the second is staged behind it."""
    first = submit(store, first_line)
    second = submit(store, "echo second")
    await until(lambda: _printed(store, first, "started"))
    await until(lambda: _staged(worker, second))
    return first, second


def test_a_staged_job_runs_once_the_slot_is_free(store: Store, store_url: str) -> None:
    async def body(worker: Worker) -> None:
        first, second = await _one_staged(worker, store, "echo started; sleep 0.5; echo done")
        assert state(store, second) == "running"  # claimed, prepared, not started
        assert store.queries.logs(second) == []
        await until(lambda: state(store, second) == "succeeded")
        assert state(store, first) == "succeeded"
        (one,) = store.queries.attempts(first)
        (two,) = store.queries.attempts(second)
        assert two.started_at is not None and one.finished_at is not None
        # Its clock started at its launch, not while it waited for the slot.
        assert two.result is not None and two.result["duration"] < 0.4

    with_worker(store_url, body, slots=1, pace=_fast_pace())


def test_stopping_gives_a_staged_job_back_unspent(store: Store, store_url: str) -> None:
    jobs: dict[str, str] = {}

    async def body(worker: Worker) -> None:
        line = "echo started; sleep 0.5; echo done"
        jobs["first"], jobs["second"] = await _one_staged(worker, store, line)

    with_worker(store_url, body, slots=1, drain_timeout=10, pace=_fast_pace())
    assert state(store, jobs["first"]) == "succeeded"  # drained
    second = store.queries.job(jobs["second"])
    assert (second.state.value, second.attempts) == ("queued", 0)
    assert store.queries.logs(jobs["second"]) == []


def test_a_cancelled_staged_job_never_starts(store: Store, store_url: str) -> None:
    async def body(worker: Worker) -> None:
        first, second = await _one_staged(worker, store, "echo started; sleep 1; echo done")
        store.jobs.cancel([second])
        await until(lambda: state(store, second) == "cancelled")
        assert state(store, first) == "running"  # the slot's job goes on
        await until(lambda: state(store, first) == "succeeded")
        assert store.queries.logs(second) == []
        third = submit(store, "echo third")  # and the slot takes the next
        await until(lambda: state(store, third) == "succeeded")

    with_worker(store_url, body, slots=1, pace=_fast_pace())


def test_a_staged_job_that_cannot_be_prepared_leaves_the_slot_alone(
    store: Store, store_url: str
) -> None:
    async def body(worker: Worker) -> None:
        first = submit(store, "echo started; sleep 0.5; echo done")
        broken = submit(store, "echo never", workdir="/nonexistent-stockade-dir")
        third = submit(store, "echo third")
        await until(lambda: state(store, broken) == "failed")
        record = store.queries.job(broken)
        assert record.reason == "invalid_job" and "does not exist" in (record.error or "")
        await until(lambda: state(store, third) == "succeeded")
        # The slot's job was not disturbed (a reset of the slot would have
        # killed it): it ran to its end.
        assert state(store, first) == "succeeded"
        assert "".join(chunk.text for chunk in store.queries.logs(first)) == "started\ndone\n"

    with_worker(store_url, body, slots=1, pace=_fast_pace())


class _BreaksOnce(LocalSandbox):
    """The real local backend, whose launch fails once when armed: a real
    sandbox that breaks on demand cannot be had otherwise."""

    armed = False

    def launch(self, request: LaunchRequest) -> ProcessHandle:
        if _BreaksOnce.armed:
            _BreaksOnce.armed = False
            raise SetupError("sandbox broke under the job")
        return super().launch(request)


def test_a_slot_set_up_anew_runs_its_next_jobs_in_the_new_sandbox(
    store: Store, store_url: str
) -> None:
    # The second job's launch breaks the sandbox: the slot is set up anew
    # (a new sandbox object) while the third may already be staged with the
    # old one. Every job still runs, in a live slot cgroup.
    _BreaksOnce.armed = False

    def factory(index: int) -> Sandbox:
        return _BreaksOnce(slot=f"anew{index}")

    async def body(worker: Worker) -> None:
        first, second = await _one_staged(worker, store, "echo started; sleep 0.3")
        third = submit(store, "echo third")
        _BreaksOnce.armed = True
        for job in (first, second, third):
            await until(lambda job=job: state(store, job) == "succeeded", timeout=20)
        broken = store.queries.attempts(second)[0]
        assert (broken.outcome, broken.reason) == ("retryable", "infrastructure")
        for job in (second, third):
            result = store.queries.attempts(job)[-1].result
            assert result is not None and result["kill_method"] == "cgroup"

    with_worker(store_url, body, slots=1, sandbox=factory, pace=_fast_pace())
