"""Pipeline runs executed in this process and recorded in the store.

The scheduler (:mod:`stockade.pipeline.scheduler`) executes its own run, in
process: it plans the DAG, keeps per-slot sandboxes and drives the live
view. It does not know the store. :class:`RunRecorder` is the glue: an
observer of the run's events and the scheduler's :class:`RunHooks`, it keeps
what changed since its last write and writes it all in one transaction
(:meth:`~stockade.store.runs.RunStore.record`) at most every
:data:`LINGER` seconds, on the engine's store thread
(:class:`~stockade.engine.storeio.AsyncStore`). Job output reaches the store
through the engine's own :class:`~stockade.engine.logsink.StoreLogSink`,
whose batches join the same transactions. Nothing the scheduler does waits
for the store.

Each write also reads the run's ``cancel_requested`` flag, and between
writes a poll reads it every :data:`POLL` seconds, so a cancel asked by
another process stops the run within about a second, exactly as Ctrl-C does.

:class:`PipelineRun` is what the faces use: it records the run, builds the
scheduler with the recorder and executes it; with ``RunOptions.fleet`` the
scheduler hands its jobs to workers (:mod:`stockade.engine.fleetrun`), and
:func:`resume_plan` says how a fleet run whose process died goes on. :func:`reuse_for` builds what a
rerun takes from its source run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from stockade.engine.logsink import StoreLogSink
from stockade.engine.progresssink import StoreProgressSink
from stockade.engine.storeio import AsyncStore, wait_for_event
from stockade.errors import StoreError, UsageError
from stockade.pipeline.model import Job, Observer, Reuse, Reused, RunState, Status
from stockade.pipeline.test2json import TestCase
from stockade.reasons import Reason, parse_reason
from stockade.runner.events import Event
from stockade.runplan.freeze import SPEC_VERSION, frozen_job
from stockade.runplan.model import PlainPipeline, PlainTask, RunPlan
from stockade.store.runrows import (
    ABANDONED_REASON,
    HEARTBEAT,
    AttemptWrite,
    JobWrite,
    RunBatch,
)
from stockade.store.states import JobState
from stockade.store.states import RunState as StoredRun

if TYPE_CHECKING:
    from stockade.pipeline.scheduler import Scheduler
    from stockade.runner.events import Sink
    from stockade.spec import Config
    from stockade.spec.pipeline import PipelineSpec
    from stockade.store import Store
    from stockade.store.literuns import RunRecording
    from stockade.store.runrecords import RunRecord

__all__ = [
    "LINGER", "POLL", "RESUME_SILENCE", "PipelineRun", "RunOptions", "RunRecorder", "resume_plan",
    "reuse_for",
]  # fmt: skip

log = logging.getLogger("stockade.runs")

#: Seconds a write waits for more changes to go with it (group commit): a
#: run's store costs a few writes a second however many jobs end in them.
LINGER = 0.2
#: Seconds between two reads of the run's cancel flag when nothing is written.
POLL = 0.5

_JOB_STATE = {
    Status.SUCCEEDED: JobState.SUCCEEDED,
    Status.FAILED: JobState.FAILED,
    Status.CANCELLED: JobState.CANCELLED,
    Status.SKIPPED: JobState.CANCELLED,
}
_RUN_STATE = {
    Status.SUCCEEDED: StoredRun.SUCCEEDED,
    Status.SKIPPED: StoredRun.SUCCEEDED,
    Status.FAILED: StoredRun.FAILED,
    Status.CANCELLED: StoredRun.CANCELLED,
}
#: Seconds a live run must have been silent (no write, no heartbeat) to be
#: resumed: two missed heartbeats, so its process is taken for dead.
RESUME_SILENCE = 2 * HEARTBEAT

#: The frozen spec of a job that never got as far as its task (skipped).
_NO_TASK: dict[str, Any] = {"version": SPEC_VERSION, "task": None, "secrets": {}}


@dataclass(frozen=True)
class RunOptions:
    """How a run is executed; recorded with it so a rerun can repeat them."""

    jobs: int | None = None
    keep_going: bool = False
    only: tuple[str, ...] = ()
    #: The pipeline's parameters as given (``--set``), without the defaults.
    params: dict[str, Any] = field(default_factory=dict)
    #: Jobs queued for workers (``--fleet``, :mod:`~stockade.engine.fleetrun`).
    fleet: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = {"jobs": self.jobs, "keep_going": self.keep_going, "only": list(self.only)}
        out |= {"fleet": True} if self.fleet else {}
        return out | ({"params": dict(self.params)} if self.params else {})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOptions:
        jobs = data.get("jobs")
        return cls(
            jobs=jobs if isinstance(jobs, int) else None,
            keep_going=bool(data.get("keep_going")),
            only=tuple(str(s) for s in data.get("only") or ()),
            params=dict(params) if isinstance(params := data.get("params"), dict) else {},
            fleet=bool(data.get("fleet")),
        )


@dataclass
class _Tracked:
    """What the recorder knows of one job, and what the store has of it."""

    job: Job
    state: JobState = JobState.RUNNING
    stored: JobState | None = None
    dirty: bool = True
    ready: bool = False  # planned or finished: its first write may go
    frozen: dict[str, Any] = field(default_factory=dict)
    attempts: dict[int, AttemptWrite] = field(default_factory=dict)
    unwritten: set[int] = field(default_factory=set)  # attempts changed since the last write


def steps_summary(run: RunState) -> dict[str, Any]:
    """Per-step progress: status, reason, jobs in all and by status."""
    return {
        name: {
            "status": step.status.value,
            "reason": step.reason,
            "jobs": len(step.jobs),
            "counts": step.counts(),
        }
        for name, step in run.steps.items()
    }


class RunRecorder:
    """Records one run's events in the store, a batch per write."""

    def __init__(
        self,
        astore: AsyncStore,
        run_id: str,
        *,
        plan: RunPlan,
        stored: StoredRun = StoredRun.RUNNING,
        linger: float = LINGER,
        poll: float = POLL,
        heartbeat: float = HEARTBEAT,
    ) -> None:
        self.astore = astore
        self.heartbeat = heartbeat
        self.run_id = run_id
        self.plan = plan
        self.linger = linger
        self.poll = poll
        self.on_cancel: list[Any] = []  # callables, called once when a cancel is asked
        self.cancel_seen = False
        self._run: RunState | None = None
        self._jobs: dict[str, _Tracked] = {}
        self._logs: list[dict[str, Any]] = []
        #: The latest unwritten progress of each (job id, attempt).
        self._progress: dict[tuple[str, int], dict[str, Any]] = {}
        self._tests: list[dict[str, Any]] = []
        self._counts: dict[str, int] = {}
        self._state: StoredRun | None = None
        self._stored = stored
        self._reason: str | None = None
        self._warnings: list[str] | None = None  # to write
        self._steps_dirty = False
        self._flushing: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._last_write = time.monotonic()
        self.errors = 0
        #: Set to stop retrying a store that is down (a second Ctrl-C).
        self.give_up = asyncio.Event()
        self._closing = asyncio.Event()

    # -- Observer --------------------------------------------------------------

    def event(self, kind: str, run: RunState, job: Job | None, data: dict[str, Any]) -> None:
        """Note what changed; schedule a write."""
        self._run = run
        if kind == "run_start":
            self._state = StoredRun.RUNNING
            if self._poller is None:
                self._poller = asyncio.get_running_loop().create_task(self._poll())
        elif kind in ("step_start", "step_finish"):
            self._steps_dirty = True
        elif kind == "job_start" and job is not None:
            self._track(job).job = job
            self._steps_dirty = True  # per-step progress: one more running
        elif kind == "job_retry" and job is not None:
            self._end_attempt(self._track(job), int(data.get("attempt", 0)), str(data["outcome"]))
        elif kind == "job_finish" and job is not None:
            self._finished(job)
        elif kind == "run_finish":
            self._run_finished(run)
        else:
            return
        self._schedule()

    # -- RunHooks --------------------------------------------------------------

    def planned(self, job: Job, task_name: str, task: PlainTask, input: Any) -> None:
        """Freeze the job's task as a worker's job is frozen (secret sources, no values)."""
        tracked = self._track(job)
        tracked.frozen = frozen_job(self.plan, task_name, task, input)
        if job.inputs is not None:
            tracked.frozen["spec"] = {**tracked.frozen["spec"], "inputs": job.inputs}
        tracked.ready = tracked.dirty = True
        self._schedule()

    def attempt_sinks(self, job: Job, attempt: int) -> list[Sink]:
        """A store log sink and a progress sink for the attempt, whose writes
        join the recorder's."""
        tracked = self._track(job)
        tracked.attempts[attempt] = AttemptWrite(attempt, time.time())
        tracked.unwritten.add(attempt)
        tracked.dirty = True
        self._schedule()
        assert job.job_id is not None
        task = tracked.frozen.get("spec", {}).get("task", {})
        budget = {key[4:]: task[key] for key in ("log_head", "log_tail") if key in task}
        return [
            StoreLogSink(self._write_logs, job.job_id, attempt, **budget),
            StoreProgressSink(self._write_progress, job.job_id, attempt),
            _ResultSink(tracked.attempts[attempt]),
        ]

    async def _write_logs(self, chunks: Sequence[dict[str, Any]]) -> None:
        self._logs.extend(chunks)
        self._schedule()

    async def _write_progress(self, job_id: str, attempt: int, data: dict[str, Any]) -> None:
        self._progress[job_id, attempt] = data
        self._schedule()

    # -- what changed ----------------------------------------------------------

    def _track(self, job: Job) -> _Tracked:
        assert job.job_id is not None, "the scheduler gives every job an id before it starts"
        tracked = self._jobs.get(job.job_id)
        if tracked is None:
            tracked = self._jobs[job.job_id] = _Tracked(job)
        return tracked

    def _end_attempt(self, tracked: _Tracked, number: int, outcome: str) -> None:
        row = tracked.attempts.get(number)
        if row is None or row.finished_at is not None:
            return
        row.finished_at, row.outcome = time.time(), outcome
        row.exit_code = tracked.job.exit_code if outcome != "retryable" else None
        tracked.unwritten.add(number)
        tracked.dirty = True

    def _finished(self, job: Job) -> None:
        tracked = self._track(job)
        tracked.state, tracked.ready, tracked.dirty = _JOB_STATE[job.status], True, True
        self._steps_dirty = True
        if tracked.attempts:
            last = max(tracked.attempts)
            self._end_attempt(tracked, last, _outcome(job))
            tracked.attempts[last].exit_code = job.exit_code
            tracked.attempts[last].reason, error = stored_reason(job)
            tracked.attempts[last].error = tracked.attempts[last].error or error
        for case in job.tests:
            self._tests.append(_test_row(job.job_id, case))
            self._counts[case.status] = self._counts.get(case.status, 0) + 1

    def _run_finished(self, run: RunState) -> None:
        for job in run.jobs():  # what never said it finished: forced, or skipped when planned
            tracked = self._jobs.get(job.job_id or "")
            if tracked is not None and tracked.state is not JobState.RUNNING:
                continue
            if job.job_id is None and not job.status.done:
                continue  # never started nor skipped: it has no row
            if not job.status.done:
                job.status, job.reason = Status.CANCELLED, "cancelled (forced)"
            if job.job_id is None:
                job.job_id = _new_id()
            self._finished(job)
        self._steps_dirty = True
        self._warnings = list(run.warnings) or None
        self._state = _RUN_STATE.get(run.status, StoredRun.FAILED)
        failed = [j.name for j in run.jobs() if j.status is Status.FAILED]
        if run.status is Status.CANCELLED:
            self._reason = "cancelled"
        elif failed:
            self._reason = f"{failed[0]} failed" + (
                f" (+{len(failed) - 1} more)" * (len(failed) > 1)
            )

    # -- writing ---------------------------------------------------------------

    def _schedule(self) -> None:
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    def _batch(self) -> RunBatch:
        batch = RunBatch(self.run_id, logs=self._logs, tests=self._tests)
        self._logs, self._tests = [], []
        for tracked in self._jobs.values():
            if not tracked.dirty or not (tracked.ready or tracked.stored is not None):
                continue
            batch.jobs.append(_job_write(tracked))
            tracked.dirty = False
            tracked.unwritten.clear()
        if self._steps_dirty and self._run is not None:
            batch.steps = steps_summary(self._run)
            batch.test_counts = dict(self._counts)
            self._steps_dirty = False
        if self._state is not None and self._state is not self._stored:
            batch.state, batch.stored = self._state, self._stored
            batch.reason = self._reason
        batch.warnings, self._warnings = self._warnings, None
        return batch

    async def _flush(self) -> None:
        while True:
            await wait_for_event(self._closing, self.linger)
            batch = self._batch()
            if not batch:
                if await self._flush_progress():
                    continue
                return
            cancel = False
            try:
                cancel = await self.astore.call(
                    self.astore.store.runs.record, batch, until=self.give_up
                )
            except StoreError as exc:
                # A write the store refuses, or a store down when we gave up
                # (a store that is down is retried until then): the batch is
                # dropped, not retried forever; the run goes on.
                self.errors += 1
                log.error("run %s: could not record: %s", self.run_id, exc.message)
            self._last_write = time.monotonic()
            for write in batch.jobs:
                self._jobs[write.id].stored = write.state
                for row in write.attempt_rows:
                    self._jobs[write.id].attempts[row.attempt].new = False
            if batch.state is not None:
                self._stored = batch.state
            await self._flush_progress()
            if cancel:
                self._cancel()

    async def _flush_progress(self) -> bool:
        """Write the progress of jobs whose row is stored (an event needs its
        job); whether there was any. A write the store refuses is dropped."""
        ready = [key for key in self._progress if self._jobs[key[0]].stored is not None]
        for job_id, attempt in ready:
            data = self._progress.pop((job_id, attempt))
            try:
                await self.astore.once(
                    self.astore.store.journal.record_progress, job_id, attempt, data
                )
            except StoreError:
                self.errors += 1
        return bool(ready)

    async def _poll(self) -> None:
        """Read the cancel flag between writes; stamp the run every
        :data:`~stockade.store.runs.HEARTBEAT` seconds, so that a run whose
        process died is found abandoned (``RunStore.recover_abandoned``)."""
        runs = self.astore.store.runs
        last_beat = time.monotonic()
        while True:
            await asyncio.sleep(self.poll)
            now = time.monotonic()
            try:
                if now - last_beat >= self.heartbeat:
                    last_beat = now
                    cancel = await self.astore.once(runs.heartbeat, self.run_id)
                elif now - self._last_write < self.poll:
                    continue
                else:
                    cancel = await self.astore.once(runs.cancel_requested, self.run_id)
                if cancel:
                    self._cancel()
            except StoreError as exc:
                log.warning("run %s: cannot reach the store: %s", self.run_id, exc.message)

    def _cancel(self) -> None:
        if self.cancel_seen:
            return
        self.cancel_seen = True
        for callback in self.on_cancel:
            callback()

    async def close(self) -> None:
        """Write everything left (the run's end included) and stop polling."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        self.linger = 0.0
        self._closing.set()  # a write waiting for company goes now
        while self._flushing is not None and not self._flushing.done():
            await self._flushing
        self._schedule()
        assert self._flushing is not None
        await self._flushing


def _new_id() -> str:
    from stockade.store.ids import new_job_id

    return new_job_id()


def _outcome(job: Job) -> str:
    if job.status is Status.SKIPPED:
        return "skipped"
    if job.cached:
        return "succeeded"
    return job.status.value


class _ResultSink:
    """Keeps what a run's attempt used and where its hang dump is, from the
    runner's ``finish`` event, for the attempt's row."""

    event_kinds = frozenset({"finish"})
    dropped = 0

    def __init__(self, row: AttemptWrite) -> None:
        self.row = row

    def emit(self, event: Event) -> None:
        if event.kind == "finish":
            result = event.data["result"]
            self.row.result = {key: result.get(key) for key in ("usage", "dump")}

    async def aclose(self) -> None:
        return None


def stored_reason(job: Job) -> tuple[str | None, str | None]:
    """A pipeline job's :class:`~stockade.reasons.Reason` for its row, and the
    pipeline's own words (why it was skipped, which run a cached result came
    from, a forced cancel) as its error."""
    if job.cached:
        came = f"reused from run {job.cached_from}" if job.cached_from else None
        return (Reason.CACHED if job.from_cache else Reason.REUSED), came
    reason = parse_reason(job.reason)
    if reason is not None:
        return reason, None
    return _BY_STATUS.get(job.status), job.reason


_BY_STATUS = {
    Status.SUCCEEDED: Reason.SUCCEEDED, Status.FAILED: Reason.FAILED,
    Status.CANCELLED: Reason.CANCELLED, Status.SKIPPED: Reason.SKIPPED,
}  # fmt: skip


def _job_write(tracked: _Tracked) -> JobWrite:
    job = tracked.job
    frozen = tracked.frozen or {"task": job.step, "spec": _NO_TASK, "input": None}
    reason, error = stored_reason(job)
    done = tracked.state is not JobState.RUNNING
    return JobWrite(
        id=str(job.job_id), step=job.step, item=job.key, state=tracked.state,
        stored=tracked.stored, attempts=max(tracked.attempts, default=0),
        started_at=job.started, finished_at=(job.finished or time.time()) if done else None,
        outcome=_outcome(job) if done else None, reason=reason if done else None,
        error=error if done else None, exit_code=job.exit_code,
        outputs=dict(job.outputs) if tracked.state is JobState.SUCCEEDED else None,
        attempt_rows=[dataclasses.replace(tracked.attempts[n]) for n in sorted(tracked.unwritten)],
        **frozen,
    )  # fmt: skip


def _test_row(job_id: str | None, case: TestCase) -> dict[str, Any]:
    data = case.to_dict()
    return {
        "job_id": job_id, "package": data["package"][:500], "test": data["test"][:500],
        "status": data["status"], "elapsed": float(data["elapsed"] or 0.0),
        "output": data["output"],
    }  # fmt: skip


class PipelineRun:
    """One pipeline run, executed in this process and recorded in ``store``.

    :meth:`create` writes the run's row (``queued`` with ``queued=True``, for
    a server that answers before the run starts; ``running`` otherwise), so
    its id can be shown at once; :meth:`execute` runs it. Making one does no
    I/O, so an event loop may make it and create the row from a thread.
    ``resumes``: the run whose queued jobs a ``--fleet`` run adopts (its
    unique keys), for ``stockade runs RUN --resume``.
    """

    def __init__(
        self,
        store: RunRecording,
        config: RunPlan | Config,
        name: str,
        spec: PlainPipeline | PipelineSpec,
        *,
        options: RunOptions,
        run_id: str | None = None,
        observers: Sequence[Observer] = (),
        data_dir: str | None = None,
        reuse: Reuse | None = None,
        source_run: str | None = None,
        rerun: dict[str, Any] | None = None,
        rerun_tests: dict[str, list[str]] | None = None,
        queued: bool = False,
        own_store: bool = True,
        resumes: str | None = None,
    ) -> None:
        from stockade.pipeline.scheduler import Scheduler, as_plan

        plan, pipeline = as_plan(config, name, spec)
        self.run_id = run_id or _new_id()
        self.store = store
        self.own_store = own_store
        state = StoredRun.QUEUED if queued else StoredRun.RUNNING
        # Without --fleet only the recording's run and journal writes (and its
        # ``db.name``) are called: the driver-only one of :mod:`~stockade.store.literuns`
        # does; a --fleet run queues jobs and reads them, so it is given a full store.
        self.astore = AsyncStore(cast("Store", store))
        self.recorder = RunRecorder(self.astore, self.run_id, plan=plan, stored=state)
        remote, jobs = None, options.jobs
        if options.fleet:
            from stockade.engine.fleetrun import FLEET_JOBS, FleetJobs
            from stockade.spec import Config

            if not isinstance(config, Config):  # its jobs are queued through the models
                raise UsageError("a --fleet run takes the config's models, not a plan")
            # A resumed run's jobs keep the keys of the run that first queued them.
            remote = FleetJobs(
                self.astore, config, resumes or self.run_id, resumed=resumes is not None
            )
            if jobs is None and not isinstance(pipeline.concurrency, int):
                jobs = FLEET_JOBS
        self.scheduler: Scheduler = Scheduler(
            plan, name, pipeline, run_id=self.run_id, jobs=jobs,
            keep_going=options.keep_going, only=options.only,
            observers=[*observers, self.recorder], data_dir=data_dir,
            hooks=self.recorder, reuse=reuse, params=options.params,
            rerun_tests=rerun_tests, remote=remote,
        )  # fmt: skip
        self.recorder.on_cancel.append(self.scheduler.cancel)
        self.pipeline, self.state, self.source_run = name, state, source_run
        self.options = options.to_dict() | ({"rerun": rerun} if rerun else {})

    def create(self) -> str:
        """Record the run (blocking: call it before :meth:`execute`); its id."""
        self.store.runs.create(
            self.run_id, self.pipeline, options=self.options,
            steps=steps_summary(self.scheduler.run), source_run=self.source_run, state=self.state,
        )  # fmt: skip
        return self.run_id

    def cancel(self) -> None:
        """Stop every job cleanly (the first Ctrl-C)."""
        self.scheduler.cancel()

    def force(self) -> None:
        """Cancel the jobs' tasks now, and stop waiting for a store that is down."""
        self.scheduler.force()
        self.recorder.give_up.set()

    async def execute(self) -> RunState:
        """Run the pipeline to its end; its final state (also in the store)."""
        try:
            return await self.scheduler.execute()
        except asyncio.CancelledError:
            # Our task was cancelled (a server shutting down): the scheduler
            # stopped its jobs; record the run as cancelled, not running forever.
            run = self.scheduler.run
            run.status, run.finished = Status.CANCELLED, time.time()
            self.recorder.event("run_finish", run, None, {})
            raise
        finally:
            await self.recorder.close()
            self.astore.close(dispose=self.own_store)


def reuse_for(store: Store, source: RunRecord, *, rerun: set[str] | None, strict: bool) -> Reuse:
    """What a rerun of ``source`` takes from it: every succeeded job's outputs,
    exit code and tests, except the jobs named in ``rerun``.

    ``strict`` (``--failed``): a job is reused only if all it depends on was
    too. Without it (``STEP``/``STEP/ITEM``), every other success is reused.
    """
    jobs = store.runs.jobs(source.id)
    done = [j for j in jobs if j.state is JobState.SUCCEEDED]
    outputs = store.runs.outputs(j.id for j in done)
    tests: dict[str, list[TestCase]] = {}
    for test in store.runs.tests(source.id):
        case = TestCase(test.package, test.test, test.status, test.elapsed)
        case.output = [test.output] if test.output else []
        tests.setdefault(test.job_id or "", []).append(case)
    results: dict[str, Reused] = {}
    for job in done:
        name = job_name(job.step or job.task, job.item)
        if rerun is not None and name in rerun:
            continue
        inputs = job.spec.get("inputs")
        results[name] = Reused(
            run_id=source.id, outputs=outputs.get(job.id, {}), exit_code=job.exit_code,
            tests=tests.get(job.id, []), inputs=inputs if isinstance(inputs, str) else None,
        )  # fmt: skip
    return Reuse(results, with_upstream=strict)


def job_name(step: str, item: str | None) -> str:
    """``step`` or ``step[item]``, as the scheduler names jobs."""
    return step if item is None else f"{step}[{item}]"


def rerun_plan(
    store: Store,
    source: RunRecord,
    spec: PipelineSpec | PlainPipeline,
    target: str | None,
    failed: bool,
) -> tuple[Reuse | None, RunOptions, dict[str, Any]]:
    """What ``stockade rerun`` runs: the reuse, the options, and what to record.

    ``target`` is ``STEP`` or ``STEP/ITEM``; with neither it nor ``failed``
    the whole run runs again. Raises :class:`UsageError` for an unknown step
    or item.
    """
    options = RunOptions.from_dict(source.options)
    if failed:
        return reuse_for(store, source, rerun=None, strict=True), options, {"failed": True}
    if target is None:
        return None, options, {"whole": True}
    step, _, item = target.partition("/")
    if step not in spec.steps:
        known = ", ".join(spec.steps)
        raise UsageError(f"pipeline {source.pipeline!r} has no step {step!r} (steps: {known})")
    names = {job_name(step, j.item) for j in store.runs.jobs(source.id) if j.step == step}
    if item:
        wanted = job_name(step, item)
        if wanted not in names:
            have = ", ".join(sorted(names)) or "none"
            raise UsageError(f"run {source.id} has no job {wanted} (its jobs of {step}: {have})")
        names = {wanted}
    reuse = reuse_for(store, source, rerun=names, strict=False)
    reuse.target = (step, item or None)
    return reuse, dataclasses.replace(options, only=(step,)), {"target": target}


def resume_plan(store: Store, source: RunRecord) -> tuple[RunOptions, str]:
    """What ``stockade runs RUN --resume`` runs: ``source``'s options, and the
    run whose id its queued jobs' unique keys carry (the first of a chain of
    resumes). Raises :class:`UsageError` unless ``source`` ran ``--fleet``
    and its process died: silent for :data:`RESUME_SILENCE` seconds while
    live, or ended as abandoned."""
    options = RunOptions.from_dict(source.options)
    rerun = source.options.get("rerun") or {}
    if not options.fleet:
        raise UsageError(
            f"run {source.id} did not run with --fleet: its jobs ended with its process"
            f" (`stockade rerun {source.id} --failed` runs again what did not succeed)"
        )
    if source.source_run is not None and "resume" not in rerun:
        raise UsageError(f"run {source.id} is a rerun: a rerun cannot be resumed")
    if source.state in (StoredRun.QUEUED, StoredRun.RUNNING):
        silent = store.queries.now() - source.updated_at
        if silent < RESUME_SILENCE:
            raise UsageError(
                f"run {source.id} is {source.state.value} and reported {silent:.0f}s ago:"
                f" its process is alive (resume a run silent for {RESUME_SILENCE:g}s)"
            )
    elif source.reason != ABANDONED_REASON:
        raise UsageError(
            f"run {source.id} is {source.state.value}: only a run whose process died resumes"
        )
    key = rerun.get("resume")
    return options, key if isinstance(key, str) else source.id
