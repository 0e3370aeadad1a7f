"""Which queued jobs a worker may claim: its queue, its labels, its sandbox.

A job names a queue (``jobs.queue``, ``default`` unless its task or the
submitter names another) and may require labels (``jobs.labels``, a JSON
object of ``key: value``, NULL when it requires none). A worker serves some
queues (or all) and offers labels; the claim takes a job only if the
worker serves its queue and offers every label it requires with the same
value. These conditions are part of the claim's one statement (in SQL:
:mod:`~stockade.store.routesql`), beside the sandbox test below.

A job whose task declares a sandbox keeps that profile's backend in the
store as one bit (``jobs.sandbox_need``; 0 when the task declares none).
A worker offers the backends it can run; a claim takes only jobs whose bit
is among them, tested in SQL as ``sandbox_need & refused = 0`` with one
integer parameter, so the claim's statement and index stay what they were.
A backend this stockade does not know (a newer one) is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from stockade.store.newjob import DEFAULT_QUEUE

__all__ = [
    "DEFAULT_QUEUE", "SANDBOX_BITS", "Offer", "backend_of", "label_json", "refused_mask",
    "sandbox_bit", "waiting_for", "why_waiting",
]  # fmt: skip

#: One bit per sandbox backend; stored, so never renumbered.
SANDBOX_BITS: dict[str, int] = {"local": 1, "bwrap": 2, "chroot": 4, "oci": 8, "mock": 16}
#: Every bit a job can hold (a signed 32-bit column on both stores).
_ALL = (1 << 31) - 1


def sandbox_bit(backend: str | None) -> int:
    """The stored bit of a job that needs ``backend`` (``None``: any worker)."""
    if backend is None:
        return 0
    try:
        return SANDBOX_BITS[backend]
    except KeyError:
        raise ValueError(f"unknown sandbox backend {backend!r}") from None


def backend_of(bit: int) -> str | None:
    """The backend a stored bit names, ``None`` for 0 (or a bit unknown here)."""
    return next((name for name, value in SANDBOX_BITS.items() if value == bit), None)


@functools.lru_cache(maxsize=32)
def _mask(offers: frozenset[str]) -> int:
    offered = 0
    for name in offers:
        offered |= SANDBOX_BITS.get(name, 0)
    return _ALL & ~offered


def refused_mask(offers: Collection[str] | None) -> int:
    """The bits of jobs a worker offering ``offers`` must not claim (``None``: none refused)."""
    return 0 if offers is None else _mask(frozenset(offers))


# -- queues and labels ---------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """What one worker serves: a job is its to claim when its queue is among
    ``queues`` (``None``: every queue), every label it requires is among
    ``labels`` with the same value, and its sandbox is among ``sandboxes``
    (``None``: every backend). Frozen and plain, so it crosses to the
    worker's store process as it is."""

    sandboxes: tuple[str, ...] | None = None
    queues: tuple[str, ...] | None = None
    labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, offers: Offer | Collection[str] | None) -> Offer:
        """``offers`` as an offer: a plain collection names sandboxes only."""
        if isinstance(offers, Offer):
            return offers
        return cls(sandboxes=None if offers is None else tuple(offers))

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    def refuses(
        self, queue: str, labels: Mapping[str, str] | None, sandbox: str | None
    ) -> tuple[int, str, str] | None:
        """Why this worker would not claim a job of ``queue`` requiring
        ``labels`` in ``sandbox`` (``None``: it would): the first of queue,
        label, sandbox it lacks, as ``(rank, key, reason)``."""
        if self.queues is not None and queue not in self.queues:
            return 0, f"queue {queue}", f"serves queue {queue!r}"
        offered = self.label_map
        for key, value in sorted((labels or {}).items()):
            if offered.get(key) != value:
                return 1, f"label {key}={value}", f"offers label {key}={value}"
        if sandbox is not None and self.sandboxes is not None and sandbox not in self.sandboxes:
            return 2, sandbox, f"offers sandbox {sandbox!r}"
        return None


def waiting_for(
    offers: Sequence[Offer], queue: str, labels: Mapping[str, str] | None, sandbox: str | None
) -> tuple[str, str] | None:
    """Why no worker of ``offers`` (the live ones) can claim such a job, as
    ``(key, reason)``: the key names what is missing (``queue gpu``, ``label
    gpu=1``, or a sandbox backend), the reason says it ("no live worker
    serves queue 'gpu'"). ``None``: a worker can, or the job asks for
    nothing a worker may lack.

    The reason is the one of the worker that comes closest: when workers
    serve the queue but none offers a label, it names the label. With no
    live worker at all, a job that asks for nothing special (the default
    queue, no labels, no sandbox) has no reason here: that is the health
    check's "no live worker".
    """
    if not offers:
        offers = (Offer(sandboxes=(), queues=(DEFAULT_QUEUE,)),)
    best: tuple[int, str, str] | None = None
    for offer in offers:
        refused = offer.refuses(queue, labels, sandbox)
        if refused is None:
            return None
        if best is None or refused[0] > best[0]:
            best = refused
    assert best is not None
    return best[1], f"no live worker {best[2]}"


def why_waiting(
    offers: Sequence[Offer], queue: str, labels: Mapping[str, str] | None, sandbox: str | None
) -> str | None:
    """The reason of :func:`waiting_for`, or ``None``."""
    found = waiting_for(offers, queue, labels, sandbox)
    return None if found is None else found[1]


def label_json(labels: Mapping[str, str] | None) -> dict[str, str] | None:
    """The stored form of a job's required labels: ``None`` when it requires
    none (the claim tests ``labels IS NULL`` first), else sorted by key."""
    return dict(sorted(labels.items())) if labels else None
