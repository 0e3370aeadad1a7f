"""A job to enqueue, as the engine hands it to the store.

Apart from the other records (:mod:`~stockade.store.records`, which
re-exports it) because a pipeline run freezes each of its jobs' tasks into
one (:func:`~stockade.engine.jobspec.new_job`) but reads no job back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_QUEUE", "NewJob"]

#: The queue of a job whose task names none.
DEFAULT_QUEUE = "default"


@dataclass
class NewJob:
    """A job to enqueue: the task's frozen definition plus its policy.

    ``spec`` is whatever the engine needs to rebuild the attempt later (the
    store only keeps it); the policy fields are columns so that recovery can
    apply them in SQL's company without parsing ``spec``.
    """

    task: str
    spec: dict[str, Any]
    input: Any = None
    priority: int = 0
    max_attempts: int = 3
    backoff_initial: float = 1.0
    backoff_multiplier: float = 2.0
    backoff_max: float = 300.0
    on_timeout: str = "fail"
    delay: float = 0.0
    id: str | None = None
    #: The sandbox backend the job must run in (its task's profile), or
    #: ``None``: the claiming worker's default (see :mod:`~stockade.store.routing`).
    sandbox: str | None = None
    #: Keys and dependencies (see :mod:`~stockade.store.gates`): at most
    #: ``concurrency_limit`` live jobs of ``concurrency_key`` hold a slot, and
    #: ``cancel_in_progress`` cancels the older ones; a live job of
    #: ``unique_key`` (``unique_while``: ``queued`` or ``running``) is returned
    #: instead of a new one; the job runs once the jobs ``after`` succeeded
    #: (``after_any``: ended).
    concurrency_key: str | None = None
    concurrency_limit: int = 1
    cancel_in_progress: bool = False
    unique_key: str | None = None
    unique_while: str = "queued"
    after: list[str] = field(default_factory=list)
    after_any: bool = False

    @property
    def gated(self) -> bool:
        """Whether the job waits on a key or on other jobs before it is claimable."""
        return self.concurrency_key is not None or bool(self.after)

    #: The queue it waits in, and the labels a worker must offer to claim it
    #: (``None``: none; see :mod:`~stockade.store.routing`).
    queue: str = DEFAULT_QUEUE
    labels: dict[str, str] | None = None
