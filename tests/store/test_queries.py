"""The read side: listing, counting, logs in order, workers."""

from __future__ import annotations

from stockade.runner.result import Outcome
from stockade.store import JobState, Store
from tests.store.helpers import new, result


def test_list_filter_and_count(store: Store) -> None:
    a, b, c = store.jobs.submit([new("build"), new("test"), new("build")])
    (claim,) = store.jobs.claim("w", 1, 30)
    store.jobs.finish(claim, result(claim, Outcome.SUCCEEDED))
    assert [j.id for j in store.queries.jobs()] == [c, b, a]
    assert [j.id for j in store.queries.jobs(task="build", oldest_first=True)] == [a, c]
    assert [j.id for j in store.queries.jobs(states=["succeeded"])] == [a]
    assert store.queries.count_by_state() == {"queued": 2, "succeeded": 1}
    assert store.queries.count_by_state("test") == {"queued": 1}


def test_logs_read_in_order_and_after_a_cursor(store: Store) -> None:
    (job_id,) = store.jobs.submit([new()])
    chunk = {"job_id": job_id, "attempt": 1, "time": 1.0}
    store.journal.append_logs([
        {**chunk, "stream": "stdout", "text": "one\n"},
        {**chunk, "stream": "stderr", "text": "two\n"},
    ])  # fmt: skip
    store.journal.append_logs([{**chunk, "attempt": 2, "stream": "stdout", "text": "three\n"}])
    chunks = store.queries.logs(job_id)
    assert [c.text for c in chunks] == ["one\n", "two\n", "three\n"]
    assert [c.text for c in store.queries.logs(job_id, after=chunks[0].id)] == ["two\n", "three\n"]
    assert [c.text for c in store.queries.logs(job_id, attempt=2)] == ["three\n"]


def test_workers_and_their_counters(store: Store) -> None:
    store.journal.register_worker("w1", 4)
    store.journal.worker_seen("w1", {"claimed": 7})
    (worker,) = store.queries.workers(alive_within=60)
    assert (worker.id, worker.slots, worker.counters) == ("w1", 4, {"claimed": 7})
    store.journal.worker_seen("w1", {"claimed": 8}, stopped=True)
    assert store.queries.workers(alive_within=60) == []
    assert store.queries.workers()[0].stopped_at is not None


def test_job_record_to_dict_is_plain(store: Store) -> None:
    (job_id,) = store.jobs.submit([new(input={"a": [1, 2]})])
    data = store.queries.job(job_id).to_dict()
    assert data["state"] == JobState.QUEUED.value == "queued"
    assert data["input"] == {"a": [1, 2]}


def test_keyed_finds_the_newest_job_of_a_unique_key_whatever_its_state(store: Store) -> None:
    assert store.queries.keyed("run:r:a") is None
    (first,) = store.jobs.submit([new(unique_key="run:r:a", unique_while="running")])
    (claim,) = store.jobs.claim("w", 1, 30)
    store.jobs.finish(claim, result(claim, Outcome.FAILED))
    store.jobs.submit([new(unique_key="run:r:b")])
    ended = store.queries.keyed("run:r:a")
    assert ended is not None and (ended.id, ended.state) == (first, JobState.FAILED)
    (second,) = store.jobs.submit([new(unique_key="run:r:a", unique_while="running")])
    again = store.queries.keyed("run:r:a")
    assert again is not None and again.id == second != first
