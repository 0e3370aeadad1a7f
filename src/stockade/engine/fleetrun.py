"""A pipeline's jobs run by workers: ``stockade run --fleet``.

The run's process keeps resolving the graph (needs, ``for_each``,
data-driven dependencies, cache, rerun): :class:`FleetJobs` is the
:class:`~stockade.pipeline.jobrun.Remote` its job runner hands a job to
once the reuse and cache lookups missed. It queues the job in the store as
``stockade submit`` would (the task frozen with its secret sources, its
queue, labels and sandbox, so any worker that may claim it can run it),
then follows it through the store: its output and ``::progress`` feed the
run's sinks (live view, last line, test2json results, the run's own log of
the job) and its
end becomes the pipeline job's result. A job is queued only when all it
needs succeeded, so the queue holds ready jobs only.

Each queued job has the unique key ``run:<run>:<job>`` (``<run>`` the run
that first queued it): a resumed run (``stockade runs RUN --resume``)
queueing the same job while the first one is queued or running gets that
job back instead of a second one. A cancel (Ctrl-C, ``runs --cancel``)
cancels the queued and running jobs through the store, as ``stockade
cancel`` does, and waits for them to end.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import TYPE_CHECKING, Any

from stockade.engine.jobspec import new_job
from stockade.engine.storeio import AsyncStore, wait_for_event
from stockade.runner.events import Event, Sink
from stockade.runner.result import Outcome, Result
from stockade.store import TERMINAL, JobRecord, JobState, LogChunk

if TYPE_CHECKING:
    from stockade.pipeline.jobrun import SinksFor
    from stockade.pipeline.model import Job
    from stockade.pipeline.plan import JobPlan
    from stockade.spec import Config, TaskSpec

__all__ = ["FLEET_JOBS", "POLL", "FleetJobs", "unique_key"]

#: Seconds between two reads of a queued job's state and output.
POLL = 0.25
#: Jobs of a fleet run queued at once when neither ``--jobs`` nor the
#: pipeline's ``concurrency`` says (the workers' slots bound what runs).
FLEET_JOBS = 64
#: Log chunks the store gives per read (a full page: read again).
_LOG_PAGE = 1000
#: The store's limit on a unique key.
_KEY_MAX = 200


def unique_key(run_id: str, job_name: str) -> str:
    """The unique key of ``job_name``'s queued job in run ``run_id`` (a
    digest of the name when the whole would not fit the store's column)."""
    key = f"run:{run_id}:{job_name}"
    if len(key) <= _KEY_MAX:
        return key
    return f"run:{run_id}:#{hashlib.sha256(job_name.encode()).hexdigest()}"


class FleetJobs:
    """Queues a run's jobs for workers and follows each to its end."""

    def __init__(
        self,
        astore: AsyncStore,
        config: Config,
        key_run: str,
        *,
        resumed: bool = False,
        poll: float = POLL,
    ) -> None:
        self.astore = astore
        self.config = config
        #: The run whose id the unique keys carry: the first of a resumed run.
        self.key_run = key_run
        #: Whether the run resumes one whose jobs may have been queued already.
        self.resumed = resumed
        self.poll = poll

    async def run(
        self, plan: JobPlan, job: Job, sinks_for: SinksFor, cancel: asyncio.Event
    ) -> Result:
        """Queue ``job`` (or find it queued by an earlier process of the run)
        and follow it to its end; its result."""
        key = unique_key(self.key_run, job.name)
        job_id = await self._adopted(key) if self.resumed else None
        if job_id is None:
            new = new_job(
                plan.task_name, _here(plan.task.model()), config=self.config, input=plan.input
            )
            new.unique_key, new.unique_while = key, "running"
            placed = await self.astore.call(self.astore.store.jobs.place, [new], until=cancel)
            job_id = placed[0][0]
        end = await self._follow(job_id, sinks_for, cancel)
        job.attempts = max(end.attempts, 1)
        outputs = await self.astore.call(self.astore.store.queries.outputs, job_id)
        return _result(end, outputs or {})

    async def _adopted(self, key: str) -> str | None:
        """The job an earlier process of the run queued under ``key``, if it
        is live or ended well or badly (``None``: none, or cancelled: the
        job is queued again)."""
        found = await self.astore.call(self.astore.store.queries.keyed, key)
        if found is None or found.state is JobState.CANCELLED:
            return None
        return found.id

    async def _follow(self, job_id: str, sinks_for: SinksFor, cancel: asyncio.Event) -> JobRecord:
        """Feed the job's output to its attempts' sinks until it ended; ask
        the store to cancel it once ``cancel`` is set, and wait for its end."""
        feed = _Feed(job_id, sinks_for)
        asked = False
        try:
            while True:
                record = await self.astore.call(self.astore.store.queries.job, job_id)
                await self._read_logs(feed)
                events = await self.astore.call(self.astore.store.queries.events, job_id)
                for event in events:
                    if event["kind"] == "progress":
                        feed.progress(int(event["attempt"]), dict(event["data"] or {}))
                if record.state in TERMINAL:
                    return record
                if cancel.is_set() and not asked:
                    asked = True
                    await self.astore.call(self.astore.store.jobs.cancel, [job_id])
                elif asked:  # the worker stops it: its end is what is waited for
                    await asyncio.sleep(self.poll)
                else:
                    await wait_for_event(cancel, self.poll)
        finally:
            await feed.aclose()

    async def _read_logs(self, feed: _Feed) -> None:
        """Everything the job logged since the last read, to ``feed``."""
        while True:
            chunks = await self.astore.call(
                self.astore.store.queries.logs, feed.job_id, after=feed.after
            )
            for chunk in chunks:
                feed.chunk(chunk)
            if len(chunks) < _LOG_PAGE:
                return


class _Feed:
    """A queued job's log chunks, as output events to each attempt's sinks."""

    def __init__(self, job_id: str, sinks_for: SinksFor) -> None:
        self.job_id = job_id
        self.sinks_for = sinks_for
        self.sinks: dict[int, list[Sink]] = {}
        self.after = 0
        self.seen: dict[int, dict[str, Any]] = {}  # the latest progress of each attempt

    def chunk(self, chunk: LogChunk) -> None:
        self.after = chunk.id
        event = Event("output", self.job_id, {"stream": chunk.stream, "text": chunk.text})
        event.time = chunk.time
        for sink in self._of(chunk.attempt):
            sink.emit(event)

    def progress(self, attempt: int, data: dict[str, Any]) -> None:
        """The attempt's latest ``::progress``, to its sinks once it changed."""
        if self.seen.get(attempt) == data or "value" not in data:
            return
        self.seen[attempt] = data
        event = Event(
            "progress", self.job_id, {"value": data["value"], "message": data.get("message")}
        )
        for sink in self._of(attempt):
            sink.emit(event)

    def _of(self, attempt: int) -> list[Sink]:
        if attempt not in self.sinks:
            self.sinks[attempt] = self.sinks_for(attempt)
        return self.sinks[attempt]

    async def aclose(self) -> None:
        """Close every attempt's sinks (a job that never ran gets one attempt's)."""
        if not self.sinks:
            self._of(1)
        for sinks in self.sinks.values():
            for sink in sinks:
                await sink.aclose()


def _here(task: TaskSpec) -> TaskSpec:
    """``task`` with its workspace made absolute here, as ``stockade submit
    --cwd`` does: a worker's own directory means nothing to the run (a
    sandbox's own ``workdir`` is its profile's, left alone)."""
    return task.model_copy(update={"workdir": os.path.abspath(task.workdir or os.getcwd())})


def _result(record: JobRecord, outputs: dict[str, object]) -> Result:
    """The pipeline's view of a queued job's end, as a local attempt's result."""
    try:
        outcome = Outcome(record.outcome or "")
    except ValueError:
        outcome = Outcome.FAILED
    if record.state is JobState.CANCELLED:
        outcome = Outcome.CANCELLED
    elif record.state is JobState.SUCCEEDED:
        outcome = Outcome.SUCCEEDED
    elif outcome is Outcome.SUCCEEDED:  # failed by what followed its attempt (a report)
        outcome = Outcome.FAILED
    return Result(
        job_id=record.id, task=record.task, attempt=max(record.attempts, 1), outcome=outcome,
        exit_code=record.exit_code, signal=record.signal, reason=record.reason,
        error=None if record.state is JobState.SUCCEEDED else record.error,
        outputs=dict(outputs),
    )  # fmt: skip
