"""The service's one way into the engine and the store.

:class:`Service` is what every route uses: it submits through
:func:`stockade.engine.jobspec.new_job`, reads and changes jobs through the
store's public API (``queries``, ``jobs``) and the service queries of
:mod:`stockade.store.serverq`, and knows whether the server is draining.
Store calls are blocking; routes call them from FastAPI's thread pool, but for
submissions, which one thread writes in batches (:mod:`.groupcommit`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from stockade import tracing
from stockade.engine.jobspec import new_job, with_keys
from stockade.errors import UsageError
from stockade.jsontext import repaired
from stockade.runner.inputs import check_input
from stockade.sandbox.base import Availability
from stockade.server.auth import TokenSet
from stockade.server.groupcommit import GroupCommit
from stockade.server.wakeups import Wakeups
from stockade.spec import Config
from stockade.store import AttemptRecord, JobRecord, LogChunk, NewJob, Store
from stockade.store.serverq import QueueStats, ServerQueries, keyed_job_id

__all__ = ["BACKENDS_TTL", "Service", "WorkerProbe", "job_view"]

#: Seconds a sandbox-backend availability check is reused by ``/health``.
BACKENDS_TTL = 30.0

#: Job fields a client sees (never ``spec``: the frozen task stays inside).
_PUBLIC = (
    "id", "task", "state", "priority", "attempts", "max_attempts", "created_at", "updated_at",
    "run_after", "started_at", "finished_at", "worker_id", "cancel_requested", "outcome",
    "exit_code", "signal", "reason", "error", "input", "run_id", "step", "item", "sandbox",
    "queue", "labels", "waiting", "concurrency_key", "concurrency_limit", "unique_key",
    "unique_while", "after", "after_any",
)  # fmt: skip


def job_view(job: JobRecord) -> dict[str, Any]:
    """A job as the API shows it (read field by field: ``dataclasses.asdict``
    deep-copies the whole record, spec included, and showed in profiles).
    Strings that are not text (lone surrogates, see :mod:`stockade.jsontext`)
    show as U+FFFD, so that no stored row can make a response fail."""
    data = {key: getattr(job, key) for key in _PUBLIC}
    data["state"] = job.state.value
    data["input"] = repaired(job.shown_input())  # masked; a row stored before input was checked
    return data


@dataclass
class WorkerProbe:
    """What the server knows of its embedded worker, for health."""

    slots: int = 0
    alive: bool = False
    running: int = 0


@dataclass
class Service:
    """The store, the config and the server's own state, for the routes."""

    store: Store
    config: Config
    tokens: TokenSet
    lease: float = 30.0
    draining: bool = False
    worker: WorkerProbe = field(default_factory=WorkerProbe)
    started: float = field(default_factory=time.time)
    #: The data directory whose artifact storage jobs' artifacts are read from
    #: (``None``: ``$STOCKADE_DATA_DIR``, else ``./.stockade``).
    data_dir: str | None = None

    def __post_init__(self) -> None:
        self.sq = ServerQueries(self.store)
        self.commits = GroupCommit(self.sq)
        self._templates: dict[str, NewJob] = {}
        self._backends: tuple[float, dict[str, Availability]] | None = None
        self.wakeups = Wakeups()

    # -- jobs ----------------------------------------------------------------

    async def submit(
        self, task: str, input: Any, *, priority: int | None = None, delay: float = 0.0,
        key: str | None = None, scope: str = "api", after: list[str] | None = None,
        after_any: bool = False, queue: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> tuple[JobRecord, bool]:  # fmt: skip
        """Queue a job of a configured task; ``(job, created)``. With ``key``, a
        repeated call returns the job the first one made; a job whose unique
        key matches a live job returns that one. ``after``: the jobs it runs
        after. ``queue`` and ``labels`` override the task's (a label given
        replaces the task's value of it). Written by the group commit's
        thread, with whatever other submissions arrive meanwhile."""
        new = self.new_job(task, input, priority=priority, delay=delay)
        new.after, new.after_any = list(dict.fromkeys(after or ())), after_any
        if queue is not None or labels:
            new = dataclasses.replace(
                new, queue=queue or new.queue, labels={**(new.labels or {}), **(labels or {})}
            )
        return await self.commits.submit(new, keyed_job_id(scope, key) if key else None)

    def new_job(
        self, task: str, input: Any, *, priority: int | None = None, delay: float = 0.0
    ) -> NewJob:
        """The record to enqueue for ``task``: the task's frozen spec is built once
        per task (the config does not change while serving), not per request."""
        template = self._templates.get(task)
        if template is None:
            if task not in self.config.tasks:
                raise UsageError(f"unknown task {task!r}")
            template = new_job(task, self.config.tasks[task], config=self.config, keys=False)
            self._templates[task] = template
        check_input(self.config.tasks[task].input_format, input)
        chosen = template.priority if priority is None else priority
        spec, trace = template.spec, tracing.carrier()
        if trace:  # the worker that runs it continues this trace (stockade.tracing)
            spec = {**spec, "trace": trace}
        job = dataclasses.replace(
            template, spec=spec, input=input, delay=delay, priority=chosen, after=[]
        )
        return with_keys(job, self.config.tasks[task])

    def close(self) -> None:
        """Commit the submissions still queued, stop the writer and listener threads."""
        self.commits.close()
        self.wakeups.stop()

    def job(self, ref: str) -> JobRecord:
        """One job by id (or unique prefix)."""
        return self.store.queries.job(ref)

    def page(
        self, states: list[str], task: str | None, limit: int, after: str | None,
        run_id: str | None = None, search: str | None = None,
    ) -> list[JobRecord]:  # fmt: skip
        """A page of jobs, newest first (of one pipeline run, if ``run_id``;
        matching ``search``, if given)."""
        return self.sq.page(
            states=states, task=task, limit=limit, after=after, run_id=run_id, search=search
        )

    def details(self, ref: str) -> tuple[JobRecord, list[AttemptRecord], dict[str, Any] | None]:
        """A job with its attempts and outputs."""
        job = self.job(ref)
        attempts = self.store.queries.attempts(job.id)
        return job, attempts, repaired(self.store.queries.outputs(job.id))

    def artifacts(self, ref: str) -> tuple[str, int | None, list[dict[str, Any]]]:
        """The job's id, the attempt whose artifacts it shows, and those."""
        from stockade.engine.artifacts import listed

        job = self.job(ref)
        attempt, items = listed(self.store.queries.attempts(job.id))
        return job.id, attempt, items

    def artifact(self, ref: str, name: str) -> tuple[dict[str, Any], BinaryIO]:
        """One artifact's record and its open content (the caller closes it)."""
        from stockade.engine.artifacts import open_artifact, storage_at

        job = self.job(ref)
        attempts = self.store.queries.attempts(job.id)
        return open_artifact(storage_at(self.data_dir), job.id, attempts, name)

    def events(self, ref: str) -> list[dict[str, Any]]:
        """The job's lifecycle events."""
        return list(repaired(self.store.queries.events(self.job(ref).id)))

    def cancel(self, ref: str, *, force: bool = False) -> str:
        """Cancel one job; what happened (``cancelled``, ``cancelling``,
        ``killing``, ``already …``). ``force``: kill a running job at once."""
        job_id = self.job(ref).id
        return self.store.jobs.cancel([job_id], force=force)[job_id]

    def retry(self, ref: str) -> str:
        """Queue a finished job again; what happened."""
        job_id = self.job(ref).id
        return self.store.jobs.retry([job_id])[job_id]

    def logs(self, job_id: str, after: int, attempt: int | None = None) -> list[LogChunk]:
        """Log chunks after chunk id ``after``."""
        return self.store.queries.logs(job_id, after=after, attempt=attempt)

    # -- health and metrics ------------------------------------------------------

    def ping(self) -> None:
        """Raise unless the store answers."""
        self.store.db.ping()

    def queue(self) -> QueueStats:
        """The runnable queue."""
        return self.sq.queue()

    def backends(self) -> dict[str, Availability]:
        """Whether each sandbox backend is usable on this host (``stockade
        sandboxes``' own check), remembered for :data:`BACKENDS_TTL` seconds so
        that a probe polling ``/health`` does not look for binaries every time."""
        now = time.monotonic()
        if self._backends is None or now - self._backends[0] > BACKENDS_TTL:
            from stockade.sandbox.registry import describe

            found = {name: usable for name, _, usable in describe() if name != "mock"}
            self._backends = (now, found)
        return self._backends[1]

    def needed_backends(self) -> list[str]:
        """The backends this server's jobs need: the embedded worker's slots run
        ``local``; a task naming a sandbox profile needs that profile's backend
        on whichever worker runs it."""
        needed = {"local"} if self.worker.slots else set()
        for task in self.config.tasks.values():
            if task.sandbox is not None:
                try:
                    profile = self.config.sandbox_profile(task.sandbox)
                except UsageError:  # the config check reports it; health does not fail on it
                    continue
                if profile is not None:
                    needed.add(profile.backend)
        return sorted(needed)

    def unservable(self) -> dict[str, tuple[int, str]]:
        """Queued jobs no live worker can claim, by what they lack, with why."""
        return self.store.queries.unservable()

    def live_workers(self) -> int:
        """Workers (embedded or not) seen within two leases."""
        return len(self.store.queries.workers(alive_within=2 * self.lease))
