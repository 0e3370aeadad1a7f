"""Plain records going into and coming out of the store.

They are dataclasses built from rows, so the layers above never see a
SQLAlchemy ``Row`` and can serialize what they get with :meth:`to_dict`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from stockade.runner.secretinput import masked_input
from stockade.store.gatewait import gate_wait, split_ids
from stockade.store.newjob import NewJob
from stockade.store.routing import DEFAULT_QUEUE, Offer, backend_of, why_waiting
from stockade.store.states import JobState

__all__ = [
    "LIVE_WITHIN", "AttemptRecord", "Claim", "JobRecord", "LogChunk", "NewJob", "WorkerRecord",
    "mark_waiting", "worker_offer",
]  # fmt: skip

#: A worker heard from within this many seconds counts as live when a
#: queued job's wait is explained (twice the default lease; a worker
#: reports at least every third of its lease).
LIVE_WITHIN = 60.0


@dataclass
class Claim:
    """A job a worker has just claimed: everything needed to run and record it.

    ``run`` is this attempt's number (``STOCKADE_ATTEMPT``) and the fence: a
    completion is recorded only while the job is still ``running`` with this
    same ``run``. ``attempts`` is the count spent, this one included.
    """

    job_id: str
    task: str
    spec: dict[str, Any]
    input: Any
    priority: int
    run: int
    attempts: int
    max_attempts: int
    transient: int
    backoff_initial: float
    backoff_multiplier: float
    backoff_max: float
    on_timeout: str
    started_at: float
    state: dict[str, Any] = field(default_factory=dict)

    #: ``jobs`` columns a lost-attempt recovery needs to apply the policy.
    POLICY_COLUMNS: ClassVar[tuple[str, ...]] = (
        "id",
        "runs",
        "attempts",
        "max_attempts",
        "transient",
        "on_timeout",
        "backoff_initial",
        "backoff_multiplier",
        "backoff_max",
    )
    #: ``jobs`` columns a claim returns.
    COLUMNS: ClassVar[tuple[str, ...]] = (
        *POLICY_COLUMNS,
        "task",
        "spec",
        "input",
        "priority",
        "started_at",
    )

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> Claim:
        """The claim of one row a claim returns: :attr:`COLUMNS`, then the saved state.

        The claim statements return ``spec`` as its JSON text: the claims of
        one task then share one parsed dict (:func:`_spec_from_text`).
        """
        claim = cls(**dict(zip(_RETURNED_FIELDS, values, strict=True)))
        claim.state = dict(claim.state or {})
        if isinstance(claim.spec, str):
            claim.spec = _spec_from_text(claim.spec)
        return claim


@functools.lru_cache(maxsize=256)
def _spec_from_text(text: str) -> dict[str, Any]:
    """A claimed job's frozen spec, parsed once per distinct text and shared
    by the claims that have it (read it, never change it): a worker's jobs
    of one task parse their spec once, and a batch of them pickles it once
    on its way from the store process."""
    value: dict[str, Any] = json.loads(text)
    return value


#: The fields of a :class:`Claim` in the order a claim returns them.
_RETURNED_FIELDS = tuple(
    {"id": "job_id", "runs": "run"}.get(name, name) for name in (*Claim.COLUMNS, "state")
)


@dataclass
class JobRecord:
    """A job as stored, for listing and showing."""

    id: str
    task: str
    state: JobState
    priority: int
    attempts: int
    max_attempts: int
    runs: int
    created_at: float
    updated_at: float
    run_after: float
    started_at: float | None
    finished_at: float | None
    worker_id: str | None
    lease_expires: float | None
    cancel_requested: bool
    outcome: str | None
    exit_code: int | None
    signal: int | None
    reason: str | None
    error: str | None
    input: Any = None
    spec: dict[str, Any] = field(default_factory=dict)
    #: The pipeline run, step and item of a run's job (``None`` for a job
    #: submitted on its own).
    run_id: str | None = None
    step: str | None = None
    item: str | None = None
    #: The sandbox backend the job must run in (``None``: the worker's default).
    sandbox: str | None = None
    #: The queue it waits in and the worker labels it requires (``None``: none).
    queue: str = DEFAULT_QUEUE
    labels: dict[str, str] | None = None
    #: Why a queued job cannot be claimed now, when the store can tell (its
    #: concurrency key is at its limit, it waits on other jobs, no live
    #: worker serves its queue or offers its labels or sandbox); ``None``
    #: otherwise.
    waiting: str | None = None
    #: Keys and dependencies (see :class:`NewJob`).
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    unique_key: str | None = None
    unique_while: str | None = None
    after: list[str] | None = None
    after_any: bool = False

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> JobRecord:
        """The record of a ``jobs`` row (a row without ``spec`` gives an empty one)."""
        values = {name: row[name] for name in _JOB_FIELDS if name in row}
        values["state"] = JobState(values["state"])
        values["cancel_requested"] = bool(values["cancel_requested"])
        values["sandbox"] = backend_of(row.get("sandbox_need") or 0)
        values["after_any"] = bool(values.get("after_any"))
        values["after"] = split_ids(row.get("after_ids")) or None
        record = cls(**values)
        if record.state is JobState.QUEUED:
            record.waiting = gate_wait(row)
        return record

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data, its input's secret fields masked."""
        data = asdict(self)
        data["state"] = self.state.value
        data["input"] = self.shown_input()
        return data

    def shown_input(self) -> Any:
        """The input as it may be shown: the store keeps secret fields (a
        worker needs them), every view masks them (see secretinput)."""
        task = self.spec.get("task") if isinstance(self.spec, dict) else None
        declared = task.get("secret_inputs") if isinstance(task, dict) else None
        return masked_input(self.input, declared if isinstance(declared, list) else ())


_JOB_FIELDS = tuple(f.name for f in fields(JobRecord))


def mark_waiting(records: list[JobRecord], offers: Callable[[], Sequence[Offer]]) -> None:
    """Set ``waiting`` on queued jobs that no live worker can claim: none
    serves their queue, offers their labels or their sandbox.

    ``offers()`` reads what live workers serve; it is called only if some
    record is a queued job.
    """
    queued = [r for r in records if r.state is JobState.QUEUED and r.waiting is None]
    if not queued:
        return
    offered = offers()
    for record in queued:
        record.waiting = why_waiting(offered, record.queue, record.labels, record.sandbox)


def worker_offer(
    sandboxes: Sequence[str] | None, queues: Sequence[str] | None, labels: Mapping[str, str] | None
) -> Offer:
    """The offer a ``workers`` row records."""
    return Offer(
        sandboxes=None if sandboxes is None else tuple(sandboxes),
        queues=None if queues is None else tuple(queues),
        labels=tuple(sorted((labels or {}).items())),
    )


@dataclass
class AttemptRecord:
    """One run of a job."""

    job_id: str
    attempt: int
    worker_id: str | None
    started_at: float
    finished_at: float | None
    outcome: str | None
    reason: str | None
    exit_code: int | None
    signal: int | None
    error: str | None
    duration: float | None
    result: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> AttemptRecord:
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LogChunk:
    """A batch of one stream's output of one attempt; ``id`` orders chunks."""

    id: int
    job_id: str
    attempt: int
    stream: str
    text: str
    time: float


@dataclass
class WorkerRecord:
    """A worker as it registered itself, with its latest counters."""

    id: str
    hostname: str
    pid: int
    slots: int
    started_at: float
    last_seen: float
    stopped_at: float | None
    counters: dict[str, int]
    #: The sandbox backends it runs jobs in (``None``: a worker from before
    #: this was recorded, taken to run any).
    sandboxes: list[str] | None = None
    #: What tells whether it still runs (see :mod:`~stockade.store.liveness`);
    #: ``None`` in rows of workers older than these columns.
    boot_id: str | None = None
    pid_start: int | None = None
    lease: float | None = None
    #: The queues it serves (``None``: every queue), the labels it offers and
    #: the stockade version it runs (``None``/empty in rows older than 0013).
    queues: list[str] | None = None
    labels: dict[str, str] | None = None
    version: str | None = None
