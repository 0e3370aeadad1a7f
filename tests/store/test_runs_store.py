"""The run store's transactions: births, fenced moves, run states, cancel flag."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from stockade.errors import RunNotFound, StoreError
from stockade.store import JobState, Store
from stockade.store import schema as t
from stockade.store.runs import AttemptWrite, JobWrite, RunBatch
from stockade.store.states import RunState
from tests.store.helpers import new


def _job(job_id: str, state: JobState, stored: JobState | None = None) -> JobWrite:
    return JobWrite(
        id=job_id, step="s", item="i", state=state, stored=stored, task="t",
        spec={"version": 1}, attempts=1, started_at=1.0,
        attempt_rows=[AttemptWrite(1, 1.0, new=stored is None)],
    )  # fmt: skip


def test_a_run_that_starts_and_ends_between_writes_goes_through_running(store: Store) -> None:
    store.runs.create("r1", "p", options={}, steps={})
    batch = RunBatch("r1", jobs=[_job("j1", JobState.SUCCEEDED)], state=RunState.SUCCEEDED)
    batch.stored = RunState.QUEUED
    assert store.runs.record(batch) is False
    run = store.runs.run("r1")
    assert run.state is RunState.SUCCEEDED
    assert run.started_at is not None and run.finished_at is not None
    assert store.queries.job("j1").run_id == "r1"


def test_moves_are_checked_and_fenced(store: Store) -> None:
    store.runs.create("r2", "p", options={}, steps={}, state=RunState.RUNNING)
    store.runs.record(RunBatch("r2", jobs=[_job("j2", JobState.RUNNING)]))
    store.runs.record(RunBatch("r2", jobs=[_job("j2", JobState.FAILED, JobState.RUNNING)]))
    assert store.queries.job("j2").state is JobState.FAILED
    with pytest.raises(StoreError, match="cannot go from failed to running"):
        store.runs.record(RunBatch("r2", jobs=[_job("j2", JobState.RUNNING, JobState.FAILED)]))
    # a stale "stored" state matches no row: the whole batch is refused
    with pytest.raises(StoreError, match="matched 0"):
        store.runs.record(RunBatch("r2", jobs=[_job("j2", JobState.SUCCEEDED, JobState.RUNNING)]))
    with pytest.raises(StoreError, match="cannot start as queued"):
        store.runs.record(RunBatch("r2", jobs=[_job("j3", JobState.QUEUED)]))
    done = RunBatch("r2", state=RunState.FAILED, stored=RunState.RUNNING)
    store.runs.record(done)
    with pytest.raises(StoreError, match="a run cannot go from failed to running"):
        store.runs.record(RunBatch("r2", state=RunState.RUNNING, stored=RunState.FAILED))


def test_cancel_flag_is_read_back_by_the_next_write(store: Store) -> None:
    store.runs.create("r3", "p", options={}, steps={}, state=RunState.RUNNING)
    assert store.runs.request_cancel("r3") == ("r3", "cancelling")
    assert store.runs.cancel_requested("r3")
    assert store.runs.record(RunBatch("r3", steps={})) is True
    store.runs.record(RunBatch("r3", state=RunState.CANCELLED, stored=RunState.RUNNING))
    assert store.runs.request_cancel("r3") == ("r3", "already cancelled")
    with pytest.raises(RunNotFound):
        store.runs.request_cancel("nope")


def test_a_runs_jobs_are_not_cancelled_or_retried_one_by_one(store: Store) -> None:
    # The run's scheduler owns its jobs: no worker would read a cancel flag on
    # them, and a job queued again would run outside its run.
    store.runs.create("r9", "p", options={}, steps={})
    store.runs.record(RunBatch("r9", jobs=[_job("running", JobState.RUNNING)]))
    store.runs.record(RunBatch("r9", jobs=[_job("failed", JobState.FAILED)]))
    (plain,) = store.jobs.submit([new()])
    cancel = store.jobs.cancel(["running", plain])
    assert cancel["running"] == (
        "refused: part of pipeline run r9; use `stockade runs r9 --cancel`"
    )
    assert cancel[plain] == "cancelled"
    retry = store.jobs.retry(["failed", plain])
    assert retry["failed"].startswith("refused: part of pipeline run r9; use `stockade rerun r9")
    assert retry[plain] == "queued"
    assert store.queries.job("running").state is JobState.RUNNING
    assert not store.queries.job("running").cancel_requested
    assert store.queries.job("failed").state is JobState.FAILED


def test_a_silent_run_is_abandoned_and_a_beating_one_is_not(store: Store) -> None:
    store.runs.create("live", "p", options={}, steps={}, state=RunState.RUNNING)
    store.runs.create("dead", "p", options={}, steps={}, state=RunState.RUNNING)
    store.runs.create("unborn", "p", options={}, steps={})  # queued: died while planning
    store.runs.record(RunBatch("dead", jobs=[_job("dj", JobState.RUNNING)]))
    store.runs.record(RunBatch("dead", jobs=[_job("dk", JobState.SUCCEEDED)]))
    assert store.runs.recover_abandoned(silent_for=60) == []  # all just written
    # Two minutes pass on the store's clock; only "live" beats meanwhile.
    with store.db.transaction() as conn:
        conn.execute(sa.update(t.runs).values(updated_at=t.runs.c.updated_at - 120))
    store.runs.request_cancel("live")  # (stamps updated_at too)
    assert store.runs.heartbeat("live") is True  # a beat reads the cancel flag back
    assert set(store.runs.recover_abandoned(silent_for=60)) == {"dead", "unborn"}
    assert store.runs.run("live").state is RunState.RUNNING
    dead = store.runs.run("dead")
    assert (dead.state, dead.reason) == (
        RunState.FAILED, "abandoned: its stockade run process stopped reporting",
    )  # fmt: skip
    assert dead.finished_at is not None
    assert store.runs.run("unborn").state is RunState.CANCELLED  # queued cannot fail
    lost = store.queries.job("dj")
    assert (lost.state, lost.outcome, lost.reason) == (JobState.FAILED, "lost", "abandoned")
    (attempt,) = store.queries.attempts("dj")
    assert (attempt.outcome, attempt.reason) == ("lost", "abandoned")
    assert store.queries.job("dk").state is JobState.SUCCEEDED  # ended jobs stay as they were
    # "live", once silent too; the ended runs are left alone
    assert store.runs.recover_abandoned(silent_for=-1) == ["live"]
    assert store.runs.heartbeat("dead") is False  # a late beat does not revive it
    assert store.runs.run("dead").state is RunState.FAILED
