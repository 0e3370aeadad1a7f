"""Queues and labels on both stores: the claim takes only the jobs a worker
serves, in one statement that walks a claim index, and a queued job no live
worker serves says why."""

from __future__ import annotations

from stockade.store import Store
from stockade.store.routing import Offer, why_waiting
from tests.store.helpers import new

GPU = (("gpu", "1"),)


def _claimed(store: Store, offer: Offer | None, limit: int = 10) -> set[str]:
    return {claim.job_id for claim in store.jobs.claim("w", limit, 30.0, offer)}


def test_a_claim_takes_only_the_queues_and_labels_the_worker_serves(store: Store) -> None:
    plain, gpu_q, needs_gpu, needs_two, other = store.jobs.submit(
        [
            new(),
            new(queue="gpu"),
            new(labels={"gpu": "1"}),
            new(queue="gpu", labels={"gpu": "1", "zone": "a"}),
            new(queue="other"),
        ]
    )
    # One queue, no labels: not the job that requires one.
    assert _claimed(store, Offer(queues=("gpu",))) == {gpu_q}
    # Every queue, a wrong label value: only what requires no label.
    assert _claimed(store, Offer(labels=(("gpu", "2"),))) == {plain, other}
    # Several queues and the labels: the rest of gpu and default.
    both = Offer(queues=("default", "gpu"), labels=(("gpu", "1"), ("zone", "a"), ("x", "y")))
    assert _claimed(store, both) == {needs_gpu, needs_two}


#: Offers, and the index their claim walks.
_WALKS = [
    (None, "ix_jobs_claim"),
    (Offer(queues=("q3",)), "ix_jobs_claim_queue"),
    (Offer(queues=("q3", "q5"), labels=GPU), "ix_jobs_claim"),
]


def test_a_claim_walks_a_claim_index_in_order_across_its_queues(store: Store) -> None:
    """No sort of the queue: the claim reads the head of an index in claim
    order, however long the queues are, and priority orders across queues."""
    store.jobs.submit([new(queue=f"q{i % 10}") for i in range(200)])
    for offer, index in _WALKS:
        plan = store.jobs.claim_plan(offer)
        walked = [line for line in plan if "INDEX" in line.upper() and "jobs" in line]
        assert any(index in line and f"{index}_" not in line for line in walked), plan
        assert not any("TEMP B-TREE" in line or line.startswith("Sort") for line in plan), plan
    low, high, mid = store.jobs.submit(
        [new(queue="a", priority=11), new(queue="b", priority=19), new(queue="a", priority=15)]
    )
    claims = store.jobs.claim("w", 3, 30.0, Offer(queues=("a", "b")))
    assert [c.job_id for c in claims] == [high, mid, low]


def test_a_queued_job_no_live_worker_serves_says_why(store: Store) -> None:
    plain, gpu_q, labelled, served = store.jobs.submit(
        [new(), new(queue="gpu"), new(queue="gpu", labels={"gpu": "1"}), new(queue="cpu")]
    )
    # No live worker: only a job that asks for something special says why.
    assert store.queries.job(plain).waiting is None
    assert store.queries.job(gpu_q).waiting == "no live worker serves queue 'gpu'"
    store.journal.register_worker("w1", 1, queues=["cpu"])
    store.journal.register_worker("w2", 1, queues=["gpu"], labels={"gpu": "2"})
    waits = {job.id: job.waiting for job in store.queries.jobs()}
    assert waits == {
        plain: "no live worker serves queue 'default'",
        gpu_q: None,
        labelled: "no live worker offers label gpu=1",
        served: None,
    }
    assert store.queries.unservable() == {
        "queue default": (1, "no live worker serves queue 'default'"),
        "label gpu=1": (1, "no live worker offers label gpu=1"),
    }
    # What a burst worker of cpu still has to do: one job.
    assert store.queries.claimable(Offer(queues=("cpu",))) == 1


def test_the_closest_worker_gives_the_reason() -> None:
    gpu_without_label = Offer(queues=("gpu",))
    elsewhere = Offer(queues=("cpu",), labels=GPU)
    local = Offer(queues=("gpu",), labels=GPU, sandboxes=("local",))
    assert why_waiting([elsewhere], "gpu", None, None) == "no live worker serves queue 'gpu'"
    assert (
        why_waiting([elsewhere, gpu_without_label], "gpu", {"gpu": "1"}, None)
        == "no live worker offers label gpu=1"
    )
    assert why_waiting([local], "gpu", {"gpu": "1"}, "bwrap") == (
        "no live worker offers sandbox 'bwrap'"
    )
    assert why_waiting([local, gpu_without_label], "gpu", {"gpu": "1"}, "local") is None
    assert why_waiting([], "default", None, None) is None
