"""Retention: finished jobs and runs deleted whole, in small batches (both stores)."""

from __future__ import annotations

import sqlalchemy as sa

from stockade.runner.result import Outcome
from stockade.store import JobState, Store
from stockade.store import schema as t
from stockade.store.runs import AttemptWrite, JobWrite, RunBatch
from stockade.store.states import RunState
from tests.store.helpers import new, result

DAY = 86400.0


def finished(store: Store, count: int, outcome: Outcome = Outcome.SUCCEEDED) -> list[str]:
    """``count`` jobs run once to ``outcome``, each with a log chunk and an output."""
    ids = store.jobs.submit([new(max_attempts=1) for _ in range(count)])
    claims = store.jobs.claim("w", count, 30.0)
    store.journal.append_logs(
        [{"job_id": c.job_id, "attempt": c.run, "stream": "stdout", "text": "x\n", "time": 1.0}
         for c in claims]
    )  # fmt: skip
    store.jobs.finish_many([(c, result(c, outcome, outputs={"o": 1})) for c in claims])
    return ids


def rows(store: Store, table: sa.Table, ids: list[str]) -> int:
    with store.db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.job_id.in_(ids))
            ).scalar_one()
        )


def ages(age: float) -> dict[str, float]:
    return dict.fromkeys(("succeeded", "failed", "cancelled"), age)


def test_old_finished_jobs_go_with_their_rows_and_live_or_young_ones_stay(store: Store) -> None:
    old = finished(store, 3)
    failed = finished(store, 1, Outcome.FAILED)
    queued = store.jobs.submit([new()])
    later = store.queries.now() + 2 * DAY
    policy = {"succeeded": DAY}  # failed jobs are kept forever
    pruned = store.retention.prune(policy, now=later)
    assert sorted(jid for jid, _ in pruned.jobs) == sorted(old)
    assert all(runs == 1 for _, runs in pruned.jobs)
    assert rows(store, t.log_chunks, failed) == 1
    for table in (t.attempts, t.events, t.outputs, t.log_chunks):
        assert rows(store, table, old) == 0, table.name
    with store.db.read() as conn:
        left = conn.execute(sa.select(t.jobs.c.id)).scalars().all()
    assert sorted(left) == sorted(failed + queued)
    assert store.retention.prune(policy, now=later).jobs == []
    young = store.retention.prune(ages(3 * DAY), now=later)
    assert young.jobs == []


def test_batches_are_bounded_and_a_dry_run_counts(store: Store) -> None:
    ids = finished(store, 7)
    later = store.queries.now() + 2 * DAY
    assert store.retention.count(ages(DAY), now=later) == (7, 0)
    first = store.retention.prune(ages(DAY), limit=3, now=later)
    assert len(first.jobs) == 3
    second = store.retention.prune(ages(DAY), limit=3, now=later, dry_run=True)
    assert len(second.jobs) == 3
    assert store.retention.count(ages(DAY), now=later) == (4, 0)
    rest = store.retention.prune(ages(DAY), limit=10, now=later)
    assert sorted(j for j, _ in first.jobs + rest.jobs) == sorted(ids)


def test_a_run_goes_whole_and_only_once_nothing_of_it_lives(store: Store) -> None:
    store.runs.create("r1", "p", options={}, steps={})
    job = JobWrite(
        id="j1", step="s", item="i", state=JobState.SUCCEEDED, stored=None, task="t",
        spec={"version": 1}, attempts=1, started_at=1.0,
        attempt_rows=[AttemptWrite(1, 1.0, new=True)],
    )  # fmt: skip
    batch = RunBatch("r1", jobs=[job], state=RunState.SUCCEEDED)
    batch.stored = RunState.QUEUED
    store.runs.record(batch)
    live = JobWrite(
        id="j2", step="s", item="k", state=JobState.RUNNING, stored=None, task="t",
        spec={"version": 1}, attempts=1, started_at=1.0,
        attempt_rows=[AttemptWrite(1, 1.0, new=True)],
    )  # fmt: skip
    store.runs.record(RunBatch("r1", jobs=[live]))
    later = store.queries.now() + 2 * DAY
    assert store.retention.prune(ages(DAY), now=later).runs == []  # j2 still runs (a rerun's)
    with store.db.transaction() as conn:
        conn.execute(sa.update(t.jobs).where(t.jobs.c.id == "j2").values(state="cancelled"))
    assert store.retention.count(ages(DAY), now=later) == (0, 1)
    pruned = store.retention.prune(ages(DAY), now=later)
    assert pruned.runs == ["r1"]
    assert sorted(j for j, _ in pruned.jobs) == ["j1", "j2"]
    assert store.runs.runs(limit=10) == []
    assert rows(store, t.attempts, ["j1", "j2"]) == 0


def test_a_job_a_live_job_waits_on_is_kept_until_that_one_ends(store: Store) -> None:
    (needed,) = store.jobs.submit([new(max_attempts=1)])
    (claim,) = store.jobs.claim("w", 1, 30.0)
    (waiting,) = store.jobs.submit([new(max_attempts=1, after=[needed])])
    store.jobs.finish_many([(claim, result(claim, Outcome.SUCCEEDED))])
    assert store.queries.job(waiting).state is JobState.QUEUED  # let go, not yet run
    pruned = store.retention.prune(ages(0), now=store.queries.now() + 1)
    assert [j for j, _ in pruned.jobs] == []
    assert store.retention.count(ages(0), now=store.queries.now() + 1) == (0, 0)
    (then,) = store.jobs.claim("w", 1, 30.0)
    store.jobs.finish_many([(then, result(then, Outcome.SUCCEEDED))])
    pruned = store.retention.prune(ages(0), now=store.queries.now() + 1)
    assert sorted(j for j, _ in pruned.jobs) == sorted([needed, waiting])
    assert rows(store, t.job_deps, [waiting]) == 0


def test_the_policy_is_stored_for_the_fleet(store: Store) -> None:
    assert store.retention.policy() == {}
    store.retention.set_policy({"succeeded": 60.0})
    store.retention.set_policy({"succeeded": 5.0, "failed": 7.0})
    assert store.retention.policy() == {"succeeded": 5.0, "failed": 7.0}
