"""Concurrency keys, unique keys and dependencies, decided in the store (both stores).

The races run real threads, each on a store of its own (its own connections,
as separate workers or submitters have), against one SQLite file or one
PostgreSQL schema.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from stockade.errors import DependencyError
from stockade.reasons import Reason
from stockade.runner.result import Outcome
from stockade.store import Claim, NewJob, Store, open_store
from stockade.store import schema as t
from stockade.store.states import JobState
from tests.store.helpers import new, result

Q, R = JobState.QUEUED, JobState.RUNNING


def _keyed(key: str = "deploy-prod", limit: int = 1, **keys: Any) -> NewJob:
    return new(concurrency_key=key, concurrency_limit=limit, **keys)


def _finish(store: Store, claim: Claim, outcome: Outcome = Outcome.SUCCEEDED) -> None:
    store.jobs.finish(claim, result(claim, outcome, exit_code=0))


def _run_threads(n: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:  # reported by the test, not lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors


def test_a_key_at_its_limit_holds_the_rest_and_says_why(store: Store) -> None:
    a, b = store.jobs.submit([_keyed(), _keyed()])
    assert store.queries.job(a).waiting is None
    held = store.queries.job(b)
    assert held.state is Q
    assert held.waiting == "concurrency key deploy-prod is at its limit 1"
    assert (held.concurrency_key, held.concurrency_limit) == ("deploy-prod", 1)
    (claim,) = store.jobs.claim("w", 5, 30)
    assert claim.job_id == a
    assert store.jobs.claim("w", 5, 30) == []
    _finish(store, claim, Outcome.FAILED)
    assert store.queries.job(b).waiting is None
    assert [c.job_id for c in store.jobs.claim("w", 5, 30)] == [b]


def test_the_limit_holds_under_concurrent_claims(store_url: str) -> None:
    store = open_store(store_url)
    keyed = store.jobs.submit([_keyed("k", 2) for _ in range(16)])
    plain = store.jobs.submit([new() for _ in range(8)])
    holding: set[str] = set()
    most = [0]
    lock = threading.Lock()
    seen: list[str] = []

    def worker(i: int) -> None:
        mine = open_store(store_url)
        idle = 0
        try:
            while idle < 40:
                claims = mine.jobs.claim(f"w{i}", 3, 30)
                idle = 0 if claims else idle + 1
                with lock:
                    seen.extend(c.job_id for c in claims)
                    holding.update(c.job_id for c in claims if c.job_id in keyed)
                    most[0] = max(most[0], len(holding))
                for claim in claims:
                    with lock:
                        holding.discard(claim.job_id)  # before its end commits
                    _finish(mine, claim)
        finally:
            mine.close()

    _run_threads(4, worker)
    assert most[0] <= 2
    assert sorted(seen) == sorted(keyed + plain)
    assert store.queries.count_by_state() == {"succeeded": 24}
    store.close()


def test_a_key_runs_its_jobs_in_submission_order(store: Store) -> None:
    ids = store.jobs.submit([_keyed(priority=p) for p in (0, 5, 9, 1)])
    order = []
    while claims := store.jobs.claim("w", 4, 30):
        assert len(claims) == 1
        order.append(claims[0].job_id)
        _finish(store, claims[0])
    assert order == ids


def test_a_retry_keeps_its_slot(store: Store) -> None:
    a, b = store.jobs.submit([_keyed(max_attempts=2, backoff_initial=0.0, backoff_max=0.0),
                              _keyed()])  # fmt: skip
    (claim,) = store.jobs.claim("w", 2, 30)
    _finish(store, claim, Outcome.RETRYABLE)
    assert [c.job_id for c in store.jobs.claim("w", 2, 30)] == [a]
    assert store.queries.job(b).waiting is not None


def test_cancel_in_progress_stops_the_older_jobs_of_the_key(store: Store) -> None:
    (a,) = store.jobs.submit([_keyed(cancel_in_progress=True)])
    (claim,) = store.jobs.claim("w", 1, 30)
    (b,) = store.jobs.submit([_keyed(cancel_in_progress=True)])
    assert store.jobs.renew("w", 30) == {a: (1, True)}  # asked to stop, as a cancel does
    (c,) = store.jobs.submit([_keyed(cancel_in_progress=True)])
    superseded = store.queries.job(b)
    assert (superseded.state, superseded.reason) == (JobState.CANCELLED, Reason.SUPERSEDED)
    assert superseded.error == f"superseded by job {c}"
    assert store.jobs.claim("w", 1, 30) == []  # a still holds the slot while it stops
    store.jobs.finish(claim, result(claim, Outcome.CANCELLED))
    assert store.queries.job(a).state is JobState.CANCELLED
    assert [x.job_id for x in store.jobs.claim("w", 1, 30)] == [c]


def test_unique_returns_the_live_job(store: Store) -> None:
    queued_only: dict[str, Any] = {"unique_key": "u", "unique_while": "queued"}
    (a,) = store.jobs.submit([new(**queued_only)])
    assert store.jobs.place([new(**queued_only)]) == [(a, False)]
    store.jobs.claim("w", 1, 30)
    (b,) = store.jobs.submit([new(**queued_only)])
    assert b != a  # a runs: no longer queued
    running: dict[str, Any] = {"unique_key": "u", "unique_while": "running"}
    assert store.jobs.place([new(**running)]) == [(a, False)]
    assert store.queries.count_by_state() == {"queued": 1, "running": 1}


def test_unique_under_concurrent_submitters(store_url: str) -> None:
    got: list[str] = []
    lock = threading.Lock()
    gate = threading.Barrier(6)

    def submitter(i: int) -> None:
        mine = open_store(store_url)
        try:
            gate.wait(30)
            for _ in range(5):
                ids = mine.jobs.submit([new(unique_key="nightly", unique_while="running")])
                with lock:
                    got.extend(ids)
        finally:
            mine.close()

    _run_threads(6, submitter)
    store = open_store(store_url)
    assert len(set(got)) == 1 and len(got) == 30
    assert store.queries.count_by_state() == {"queued": 1}
    store.close()


def test_after_runs_once_every_dependency_succeeded(store: Store) -> None:
    a, b = store.jobs.submit([new(), new()])
    (c,) = store.jobs.submit([new(after=[a, b])])
    job = store.queries.job(c)
    assert (job.after, job.after_any) == ([a, b], False)
    assert job.waiting == f"runs once jobs {a}, {b} succeed"
    first, second = store.jobs.claim("w", 5, 30)
    _finish(store, first)
    assert store.jobs.claim("w", 5, 30) == []
    _finish(store, second)
    assert [x.job_id for x in store.jobs.claim("w", 5, 30)] == [c]


def test_a_failed_dependency_fails_its_dependents_in_turn(store: Store) -> None:
    (a,) = store.jobs.submit([new()])
    (b,) = store.jobs.submit([new(after=[a])])
    (c,) = store.jobs.submit([new(after=[b])])
    (claim,) = store.jobs.claim("w", 5, 30)
    _finish(store, claim, Outcome.FAILED)
    for job_id, cause in ((b, a), (c, b)):
        job = store.queries.job(job_id)
        assert (job.state, job.reason) == (JobState.FAILED, Reason.DEPENDENCY_FAILED)
        assert job.error == f"job {cause} it runs after was failed"
    # submitted after a job that already failed: fails at once
    (d,) = store.jobs.submit([new(after=[a])])
    assert store.queries.job(d).state is JobState.FAILED


def test_after_any_runs_whatever_the_outcome(store: Store) -> None:
    a, b = store.jobs.submit([new(), new()])
    (c,) = store.jobs.submit([new(after=[a, b], after_any=True)])
    assert store.queries.job(c).waiting == f"runs once jobs {a}, {b} end"
    store.jobs.cancel([a])
    (claim,) = store.jobs.claim("w", 5, 30)
    assert claim.job_id == b
    _finish(store, claim, Outcome.FAILED)
    assert [x.job_id for x in store.jobs.claim("w", 5, 30)] == [c]


def test_after_an_unknown_job_is_refused_and_stores_nothing(store: Store) -> None:
    (a,) = store.jobs.submit([new()])
    with pytest.raises(DependencyError, match="no job 00000000000deadbeef"):
        store.jobs.submit([new(after=[a, "00000000000deadbeef"])])
    assert store.queries.count_by_state() == {"queued": 1}


def test_a_dependency_and_a_key_together(store: Store) -> None:
    (a,) = store.jobs.submit([new()])
    (holder,) = store.jobs.submit([_keyed()])
    (c,) = store.jobs.submit([_keyed(after=[a])])
    claims = {x.job_id: x for x in store.jobs.claim("w", 5, 30)}
    assert sorted(claims) == sorted([a, holder])
    _finish(store, claims[a])
    assert store.queries.job(c).waiting == "concurrency key deploy-prod is at its limit 1"
    _finish(store, claims[holder])
    assert [x.job_id for x in store.jobs.claim("w", 5, 30)] == [c]


def test_a_dependency_ending_while_a_dependent_is_submitted(store_url: str) -> None:
    """The end and the submit race; the dependent is never left waiting."""
    store = open_store(store_url)
    parents = store.jobs.submit([new() for _ in range(15)])
    claims = store.jobs.claim("w", 15, 30)
    children: list[str] = []

    def side(i: int) -> None:
        mine = open_store(store_url)
        try:
            for claim in claims:
                if i == 0:
                    _finish(mine, claim)
                else:
                    children.extend(mine.jobs.submit([new(after=[claim.job_id])]))
        finally:
            mine.close()

    _run_threads(2, side)
    assert len(children) == len(parents)
    taken = {x.job_id for x in store.jobs.claim("w", 50, 30)}
    assert taken == set(children)
    store.close()


def test_a_retried_job_waits_on_its_key_again(store: Store) -> None:
    a, _ = store.jobs.submit([_keyed(max_attempts=1), _keyed()])
    (claim,) = store.jobs.claim("w", 5, 30)
    _finish(store, claim, Outcome.FAILED)
    (claim_b,) = store.jobs.claim("w", 5, 30)
    assert store.jobs.retry([a]) == {a: "queued"}
    assert store.queries.job(a).waiting is not None
    assert store.jobs.claim("w", 5, 30) == []
    _finish(store, claim_b)
    assert [x.job_id for x in store.jobs.claim("w", 5, 30)] == [a]


def test_recovery_frees_the_slot_of_a_lost_job(store: Store) -> None:
    a, b = store.jobs.submit([_keyed(max_attempts=1), _keyed()])
    store.jobs.claim("w", 5, 30)
    with store.db.transaction() as conn:
        conn.execute(sa.update(t.jobs).where(t.jobs.c.id == a).values(lease_expires=1.0))
    assert store.jobs.recover_expired() == [(a, JobState.FAILED)]
    assert [x.job_id for x in store.jobs.claim("w", 5, 30)] == [b]
