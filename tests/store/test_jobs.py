"""The job manager's transitions, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from stockade.runner.result import Outcome
from stockade.store import JobState, NewJob, Store
from stockade.store import schema as t
from stockade.store.policy import MAX_TRANSIENT
from tests.store.helpers import new, result

Q, R = JobState.QUEUED, JobState.RUNNING


def test_claims_by_priority_then_age(store: Store) -> None:
    low, high, low2, mid = store.jobs.submit(
        [new(priority=0), new(priority=9), new(), new(priority=5)]
    )
    claimed = [c.job_id for c in store.jobs.claim("w", 3, 30)]
    assert claimed == [high, mid, low]
    assert [c.job_id for c in store.jobs.claim("w", 3, 30)] == [low2]
    assert store.jobs.claim("w", 3, 30) == []


def test_jobs_submitted_one_after_another_run_in_that_order(store: Store) -> None:
    # Many submits inside one tick of SQLite's millisecond clock: each one's
    # jobs are younger than the last one's, and all are runnable at once.
    ids = [jid for _ in range(30) for jid in store.jobs.submit([new(), new()])]
    assert [c.job_id for c in store.jobs.claim("w", 100, 30)] == ids


def test_claims_of_one_spec_share_its_parsed_dict(store: Store) -> None:
    # The worker parses (and the store process pickles) a task's spec once,
    # not once per job.
    spec = {"version": 1, "task": {"argv": ["/bin/true"], "env": {"A": "1"}}}
    other = {"version": 1, "task": {"argv": ["/bin/false"]}}
    store.jobs.submit([NewJob(task="t", spec=spec) for _ in range(3)])
    store.jobs.submit([NewJob(task="t", spec=other)])
    first, second, third, fourth = store.jobs.claim("w", 4, 30)
    assert first.spec == spec and fourth.spec == other
    assert first.spec is second.spec is third.spec
    assert fourth.spec is not first.spec


def test_claim_counts_the_attempt_before_it_runs(store: Store) -> None:
    (job_id,) = store.jobs.submit([new(input={"n": 1})])
    (claim,) = store.jobs.claim("w1", 1, 30)
    assert (claim.run, claim.attempts, claim.input) == (1, 1, {"n": 1})
    job = store.queries.job(job_id)
    assert (job.state, job.attempts, job.worker_id) == (R, 1, "w1")
    assert job.lease_expires is not None and job.lease_expires > store.queries.now() + 20
    (attempt,) = store.queries.attempts(job_id)
    assert (attempt.attempt, attempt.worker_id, attempt.outcome) == (1, "w1", None)


def test_delayed_job_waits_for_run_after(store: Store) -> None:
    # A second of delay: the claim right after the submit must come well
    # before it even on a loaded machine (0.3 s once did not, in CI).
    store.jobs.submit([new(delay=1.0)])
    assert store.jobs.claim("w", 1, 30) == []
    time.sleep(1.05)
    assert len(store.jobs.claim("w", 1, 30)) == 1


def test_success_records_outputs_state_and_is_recorded_once(store: Store) -> None:
    (job_id,) = store.jobs.submit([new()])
    (claim,) = store.jobs.claim("w", 1, 30)
    done = result(claim, Outcome.SUCCEEDED, exit_code=0, outputs={"x": 1}, state={"k": "v"})
    assert store.jobs.finish(claim, done) is JobState.SUCCEEDED
    assert store.jobs.finish(claim, done) is None  # a second completion changes nothing
    job = store.queries.job(job_id)
    assert (job.state, job.outcome, job.exit_code, job.worker_id) == (
        JobState.SUCCEEDED, "succeeded", 0, None,
    )  # fmt: skip
    assert store.queries.outputs(job_id) == {"x": 1}
    assert store.queries.saved_state(job_id) == {"k": "v"}
    kinds = [e["kind"] for e in store.queries.events(job_id)]
    assert kinds == ["queued", "started", "finished"]


def test_retry_with_backoff_then_fail_after_max_attempts(store: Store) -> None:
    (job_id,) = store.jobs.submit([new(max_attempts=2, backoff_initial=0.2, backoff_max=0.2)])
    (claim,) = store.jobs.claim("w", 1, 30)
    before = store.queries.now()
    assert store.jobs.finish(claim, result(claim, Outcome.RETRYABLE, exit_code=75)) is Q
    job = store.queries.job(job_id)
    assert before + 0.2 * 0.75 - 0.01 <= job.run_after <= before + 0.2 + 0.5
    assert store.jobs.claim("w", 1, 30) == []  # not before run_after
    time.sleep(0.25)
    (second,) = store.jobs.claim("w", 1, 30)
    assert (second.run, second.attempts) == (2, 2)
    assert store.jobs.finish(second, result(second, Outcome.RETRYABLE)) is JobState.FAILED
    assert [a.outcome for a in store.queries.attempts(job_id)] == ["retryable", "retryable"]


def test_saved_state_reaches_the_next_attempt(store: Store) -> None:
    store.jobs.submit([new(backoff_initial=0.0, backoff_max=0.0)])
    (claim,) = store.jobs.claim("w", 1, 30)
    store.jobs.finish(claim, result(claim, Outcome.RETRYABLE, state={"step": 2}))
    (again,) = store.jobs.claim("w", 1, 30)
    assert again.state == {"step": 2}


@pytest.mark.parametrize(("policy", "expected"), [("retry", Q), ("fail", JobState.FAILED)])
def test_timeout_policy(store: Store, policy: str, expected: JobState) -> None:
    store.jobs.submit([new(on_timeout=policy)])
    (claim,) = store.jobs.claim("w", 1, 30)
    assert store.jobs.finish(claim, result(claim, Outcome.TIMED_OUT)) is expected


def test_expired_lease_is_lost_and_late_completion_is_fenced(store: Store) -> None:
    (job_id,) = store.jobs.submit([new(backoff_initial=0.0, backoff_max=0.0)])
    (slow,) = store.jobs.claim("slow", 1, -1)  # the lease is already over
    assert store.jobs.recover_expired() == [(job_id, Q)]
    (fresh,) = store.jobs.claim("fast", 1, 30)
    assert fresh.run == 2
    late = result(slow, Outcome.SUCCEEDED, outputs={"who": "slow"})
    assert store.jobs.finish(slow, late) is None
    assert store.jobs.finish(fresh, result(fresh, Outcome.SUCCEEDED, outputs={"who": "fast"}))
    assert store.queries.outputs(job_id) == {"who": "fast"}
    outcomes = [(a.attempt, a.outcome, a.reason) for a in store.queries.attempts(job_id)]
    assert outcomes == [(1, "lost", "lease_expired"), (2, "succeeded", None)]


def test_a_job_that_keeps_losing_its_worker_fails(store: Store) -> None:
    (job_id,) = store.jobs.submit([new(max_attempts=3, backoff_initial=0.0, backoff_max=0.0)])
    states = []
    for _ in range(3):
        store.jobs.claim("w", 1, -1)
        states += [state for _, state in store.jobs.recover_expired()]
    assert states == [Q, Q, JobState.FAILED]
    assert store.jobs.claim("w", 1, 30) == []
    assert store.queries.job(job_id).outcome == "lost"


def test_recover_worker_takes_back_what_a_restarted_worker_held(store: Store) -> None:
    (job_id,) = store.jobs.submit([new()])
    store.jobs.claim("stable-name", 1, 300)
    assert store.jobs.recover_worker("stable-name") == [(job_id, Q)]


def test_shutdown_release_spends_no_attempt(store: Store) -> None:
    (job_id,) = store.jobs.submit([new()])
    (claim,) = store.jobs.claim("w", 1, 30)
    assert store.jobs.release(claim, reason="worker_shutdown") is Q
    job = store.queries.job(job_id)
    assert (job.state, job.attempts, job.runs) == (Q, 0, 1)
    (again,) = store.jobs.claim("w", 1, 30)
    assert (again.run, again.attempts) == (2, 1)


def test_transient_errors_spend_no_attempt_until_the_cap(store: Store) -> None:
    (job_id,) = store.jobs.submit([new(max_attempts=1)])
    with store.db.transaction() as conn:
        conn.execute(sa.update(t.jobs).values(transient=MAX_TRANSIENT - 1))
    (claim,) = store.jobs.claim("w", 1, 30)
    assert store.jobs.release(claim, reason="infrastructure", transient=True) is Q
    assert store.queries.job(job_id).attempts == 0
    with store.db.transaction() as conn:
        conn.execute(sa.update(t.jobs).values(run_after=0))
    (claim,) = store.jobs.claim("w", 1, 30)
    assert claim.transient == MAX_TRANSIENT
    assert store.jobs.release(claim, reason="infrastructure", transient=True) is JobState.FAILED


def test_cancel_queued_running_finished_and_unknown(store: Store) -> None:
    queued, running, done = store.jobs.submit([new(), new(priority=2), new(priority=1)])
    claims = {c.job_id: c for c in store.jobs.claim("w", 2, 30)}
    store.jobs.finish(claims[done], result(claims[done], Outcome.SUCCEEDED))
    answer = store.jobs.cancel([queued, running, done, "nope"])
    assert answer == {
        queued: "cancelled", running: "cancelling", done: "already succeeded", "nope": "not found",
    }  # fmt: skip
    assert store.queries.job(queued).state is JobState.CANCELLED
    assert store.jobs.cancel_requests("w") == [(running, 1, False)]
    assert store.jobs.renew("w", 30) == {running: (1, True)}
    assert store.jobs.renew("w", 30, [running]) == {running: (1, True)}
    assert store.jobs.renew("w", 30, ["some-other-job"]) == {}
    assert store.jobs.renew("w", 30, []) == {}
    # the worker's attempt ends as it may (here: retryable); the cancel wins over the retry
    claim = claims[running]
    assert store.jobs.finish(claim, result(claim, Outcome.RETRYABLE)) is JobState.CANCELLED


def test_a_second_cancel_or_a_forced_one_asks_for_a_kill(store: Store) -> None:
    """Cancelling a job already asked to stop, or with ``force``, flags it to be
    killed at once; a queued or finished job is unaffected by ``force``; a
    retry clears the flag with the cancel."""
    a, b, queued = store.jobs.submit([new(priority=2), new(priority=1), new()])
    store.jobs.claim("w", 2, 30)
    assert store.jobs.cancel([a]) == {a: "cancelling"}
    assert store.jobs.cancel_requests("w") == [(a, 1, False)]
    assert store.jobs.cancel([a, b, queued], force=False) == {
        a: "killing", b: "cancelling", queued: "cancelled",
    }  # fmt: skip
    assert store.jobs.cancel([b], force=True) == {b: "killing"}
    assert sorted(store.jobs.cancel_requests("w")) == sorted([(a, 1, True), (b, 1, True)])
    assert [e["data"] for e in store.queries.events(a) if e["kind"] == "cancel_requested"] == [
        {"by": "user", "force": False}, {"by": "user", "force": True},
    ]  # fmt: skip
    assert store.jobs.cancel([queued], force=True) == {queued: "already cancelled"}
    assert sorted(store.jobs.recover_worker("w")) == sorted(
        [(a, JobState.CANCELLED), (b, JobState.CANCELLED)]
    )
    assert store.jobs.retry([a]) == {a: "queued"}
    store.jobs.claim("w2", 1, 30)
    assert store.jobs.cancel_requests("w2") == []
    assert store.jobs.cancel([a], force=True) == {a: "killing"}
    assert store.jobs.cancel_requests("w2") == [(a, 2, True)]


def test_cancel_of_a_job_whose_worker_died(store: Store) -> None:
    (job_id,) = store.jobs.submit([new()])
    store.jobs.claim("w", 1, -1)
    store.jobs.cancel([job_id])
    assert store.jobs.recover_expired() == [(job_id, JobState.CANCELLED)]


def test_retry_requeues_failed_and_cancelled_only(store: Store) -> None:
    failed, cancelled, ok = store.jobs.submit([new(max_attempts=1, priority=1), new(), new()])
    (claim,) = store.jobs.claim("w", 1, 30)
    store.jobs.finish(claim, result(claim, Outcome.FAILED, exit_code=1))
    store.jobs.cancel([cancelled])
    answer = store.jobs.retry([failed, cancelled, ok])
    assert answer == {failed: "queued", cancelled: "queued", ok: "already queued"}
    job = store.queries.job(failed)
    assert (job.state, job.attempts, job.outcome, job.finished_at) == (Q, 0, None, None)


def test_concurrent_claimers_never_share_a_job(store: Store) -> None:
    import threading

    store.jobs.submit([new() for _ in range(200)])
    seen: list[str] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while claims := store.jobs.claim(name, 3, 30):
            with lock:
                seen.extend(c.job_id for c in claims)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 200 == len(set(seen))


def test_renew_reports_only_jobs_still_held(store: Store) -> None:
    a, b = store.jobs.submit([new(priority=1), new()])
    store.jobs.claim("w", 2, -1)
    store.jobs.claim("other", 0, 30)
    with store.db.transaction() as conn:
        conn.execute(sa.update(t.jobs).where(t.jobs.c.id == a).values(lease_expires=1e12))
    store.jobs.recover_expired()  # b is lost and queued again
    assert store.jobs.renew("w", 30) == {a: (1, False)}
    assert store.queries.job(b).state is Q


def test_a_batch_records_each_end_on_its_own_fence_and_claims_in_the_same_commit(
    store: Store,
) -> None:
    ids = store.jobs.submit([new(max_attempts=2, backoff_initial=0.0, backoff_max=0.0)
                             for _ in range(5)])  # fmt: skip
    ok, retry, stale, cancelled = store.jobs.claim("w", 4, 30)
    assert store.jobs.cancel([cancelled.job_id]) is not None
    with store.db.transaction() as conn:  # another worker took ``stale`` over meanwhile
        conn.execute(sa.update(t.jobs).where(t.jobs.c.id == stale.job_id).values(runs=9))
    ends = [
        (ok, result(ok, Outcome.SUCCEEDED, exit_code=0, outputs={"n": 1})),
        (retry, result(retry, Outcome.RETRYABLE, exit_code=3)),
        (stale, result(stale, Outcome.SUCCEEDED, exit_code=0)),
        (cancelled, result(cancelled, Outcome.FAILED, exit_code=1)),
        (ok, result(ok, Outcome.SUCCEEDED, exit_code=0)),  # the same end twice: once only
    ]
    states, claims = store.jobs.finish_and_claim(ends, "w", 5, 30)
    assert states == [JobState.SUCCEEDED, Q, None, JobState.CANCELLED, None]
    # the claim in the same transaction saw the retried job queued again
    assert sorted(c.job_id for c in claims) == sorted([ids[4], retry.job_id])
    assert store.queries.outputs(ok.job_id) == {"n": 1}
    assert store.queries.job(stale.job_id).state is R
    assert store.queries.attempts(stale.job_id)[0].outcome is None
    kinds = [e["kind"] for e in store.queries.events(ok.job_id)]
    assert kinds == ["queued", "started", "finished"]
    assert [e["kind"] for e in store.queries.events(retry.job_id)] == [
        "queued", "started", "finished", "started",
    ]  # fmt: skip
    assert store.jobs.finish_and_claim([], "w", 0, 30) == ([], [])


def test_claim_returns_the_saved_state(store: Store) -> None:
    (job_id,) = store.jobs.submit([new(backoff_initial=0.0, backoff_max=0.0)])
    (first,) = store.jobs.claim("w", 1, 30)
    assert first.state == {}
    store.jobs.finish(first, result(first, Outcome.RETRYABLE, state={"page": 7}))
    (second,) = store.jobs.claim("w", 1, 30)
    assert (second.job_id, second.state) == (job_id, {"page": 7})
