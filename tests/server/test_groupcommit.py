"""Group commit on real SQLite and PostgreSQL stores: submissions that arrive
while the store is busy go in one transaction, each with its own answer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from stockade.errors import StoreError
from stockade.server.groupcommit import GroupCommit
from stockade.store import Store
from stockade.store.serverq import ServerQueries
from tests.store.helpers import new


@contextlib.contextmanager
def write_lock(store: Store) -> Iterator[None]:
    """Hold the store's write lock from another connection (SQLite: BEGIN
    IMMEDIATE; PostgreSQL: a lock on ``jobs`` that blocks inserts, not reads)."""
    with store.db.transaction() as conn:
        if store.db.dialect == "postgresql":
            conn.execute(sa.text("LOCK TABLE jobs IN EXCLUSIVE MODE"))
        yield


async def _taken(commits: GroupCommit, pending: asyncio.Task[object]) -> None:
    """Wait until the writer thread has taken the queued item (and is blocked on the lock)."""
    deadline = time.monotonic() + 10
    while commits.waiting():  # the queue is the writer's hand-over point
        assert time.monotonic() < deadline and not pending.done()
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)


def test_submissions_during_a_commit_share_the_next_transaction(store: Store) -> None:
    sq = ServerQueries(store)
    before = sq.submit_batch([(new(input="old"), "key-c")])
    assert before[0][1] is True
    commits = GroupCommit(sq)

    async def scenario() -> list[tuple[str, bool]]:
        with write_lock(store):
            first = asyncio.create_task(commits.submit(new(input="a"), "key-a"))
            await _taken(commits, first)
            rest = [
                asyncio.create_task(commits.submit(job, key))
                for job, key in [
                    (new(input="a again"), "key-a"),  # the same key as the blocked one
                    (new(input="b"), "key-b"),
                    (new(input="b twice"), "key-b"),  # a duplicate inside the batch
                    (new(input="plain 1"), None),
                    (new(input="plain 2"), None),
                    (new(input="c again"), "key-c"),  # a key stored before
                ]
            ]
            await asyncio.sleep(0.1)
            assert not first.done()
        answers = await asyncio.gather(first, *rest)
        return [(job.id, created) for job, created in answers]

    try:
        answers = asyncio.run(scenario())
    finally:
        commits.close()
    assert commits.batches == 2 and commits.items == 7  # the blocked one, then all the rest
    ids = [job_id for job_id, _ in answers]
    assert [created for _, created in answers] == [True, False, True, False, True, True, False]
    assert ids[0] == ids[1] == "key-a" and ids[2] == ids[3] == "key-b" and ids[6] == "key-c"
    assert len(set(ids)) == 5
    stored = store.queries.jobs(limit=None)
    assert sorted(j.id for j in stored) == sorted(set(ids))
    inputs = {j.id: j.input for j in stored}
    assert inputs["key-a"] == "a" and inputs["key-b"] == "b" and inputs["key-c"] == "old"
    assert len(store.queries.events("key-b")) == 1  # one queued event, not two


def test_a_failing_submission_fails_alone(store: Store) -> None:
    commits = GroupCommit(ServerQueries(store))
    # A priority beyond the 64-bit column: the driver refuses the whole batch.
    bad = new(input="bad", priority=2**70)

    async def scenario() -> list[object]:
        with write_lock(store):
            first = asyncio.create_task(commits.submit(new(input="first"), "k1"))
            await _taken(commits, first)
            rest = [
                asyncio.create_task(commits.submit(job, key))
                for job, key in [(new(input="ok"), "k2"), (bad, "k3"), (new(input="ok2"), None)]
            ]
            await asyncio.sleep(0.1)
        return list(await asyncio.gather(first, *rest, return_exceptions=True))

    try:
        answers = asyncio.run(scenario())
    finally:
        commits.close()
    assert isinstance(answers[2], StoreError | OverflowError), answers[2]
    good = [a for i, a in enumerate(answers) if i != 2]
    assert all(isinstance(a, tuple) and a[1] is True for a in good), answers
    stored = {j.input for j in store.queries.jobs(limit=None)}
    assert stored == {"first", "ok", "ok2"}


def test_many_concurrent_submissions_each_get_their_own_job(store: Store) -> None:
    commits = GroupCommit(ServerQueries(store))

    async def scenario() -> int:
        answers = await asyncio.gather(*(commits.submit(new(input=i)) for i in range(50)))
        return len({job.id for job, _ in answers})

    try:
        assert asyncio.run(scenario()) == 50
    finally:
        commits.close()
    assert len(store.queries.jobs(limit=None)) == 50
    assert commits.items == 50


@pytest.mark.parametrize("size", [1, 3])
def test_batch_ids_are_in_submission_order(store: Store, size: int) -> None:
    sq = ServerQueries(store)
    answers = sq.submit_batch([(new(input={"n": i}, delay=i), None) for i in range(size)])
    jobs = store.queries.jobs(limit=None, oldest_first=True)
    assert [j.id for j in jobs] == [job.id for job, _ in answers]
    # The records answered are built, not read back: they must be what is stored.
    for job, _ in answers:
        assert store.queries.job(job.id) == job  # spec included: views mask input by it
