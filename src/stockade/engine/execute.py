"""One claimed job: build its attempt, run it in a slot, record the end.

The worker calls :func:`execute` once per claim. What can go wrong is
sorted here, in one place:

* the job's own end (any outcome the runner classifies) is recorded by
  :meth:`~stockade.store.JobManager.finish`, which applies the retry policy;
* a job that cannot even be built or given its input (a bad frozen spec, a
  missing secret, invalid input) fails without retry: trying again cannot help;
* an infrastructure error (the sandbox broke, the runtime directory could
  not be made) is transient: the job goes back to the queue without spending
  its attempt (:meth:`~stockade.store.JobManager.release`);
* an interrupted job — the worker is shutting down, or its lease was taken
  over — is released, or not recorded at all; so is a job the fence killed
  because its lease was not renewed in time (:mod:`~stockade.engine.fencing`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from stockade import tracing
from stockade.engine.fulllog import FullLog
from stockade.engine.host import JobHost
from stockade.engine.jobspec import declared_profile, describe_error, log_budget, run_spec_for
from stockade.engine.jobstate import Phase, Running
from stockade.engine.logfields import job_fields
from stockade.engine.logsink import StoreLogSink, Writer
from stockade.engine.progresssink import ProgressWriter, StoreProgressSink
from stockade.errors import (
    SandboxError,
    SandboxMismatch,
    StockadeError,
    StoreUnavailable,
    UsageError,
)
from stockade.reasons import Reason
from stockade.runner.attempt import run
from stockade.runner.events import Sink
from stockade.runner.result import Outcome, Result
from stockade.runner.spec import RunSpec
from stockade.runner.turn import Turn
from stockade.sandbox.registry import prepare_spec
from stockade.store import Claim, JobState

if TYPE_CHECKING:
    from stockade.engine.slot import Slot

__all__ = ["execute", "log_writer", "progress_writer", "record"]

log = logging.getLogger("stockade.worker")

_COUNTER = {
    JobState.SUCCEEDED: "succeeded",
    JobState.FAILED: "failed",
    JobState.QUEUED: "retried",
    JobState.CANCELLED: "cancelled",
}


async def execute(
    worker: JobHost,
    slot: Slot,
    job: Running,
    ran: Callable[[], None] = lambda: None,
    turn: Turn | None = None,
) -> None:
    """Run ``job`` in ``slot`` and record how it ended.

    ``ran`` is called as soon as the slot is no longer needed, before the
    end is recorded, so the slot can start its next job meanwhile. With
    ``turn``, the slot is still busy: the attempt is prepared now and
    launched when the worker's ``turn.go()`` says the slot is free.
    """
    claim = job.claim
    attributes = {"stockade.job": claim.job_id, "stockade.task": claim.task,
                  "stockade.attempt": claim.run, "stockade.worker": worker.id}  # fmt: skip
    # The job's stored trace context: its run continues the trace it was submitted in.
    with tracing.span("stockade.run", claim.spec.get("trace"), attributes):
        tracing.ended_span("stockade.claim", claim.started_at, time.time(), None, attributes)
        # A job submitted inside a trace sees the run span in TRACEPARENT: its spans join it.
        trace = tracing.carrier() if "trace" in claim.spec else {}
        await _execute(worker, slot, job, ran, turn, trace.get("traceparent"))


async def _execute(
    worker: JobHost, slot: Slot, job: Running, ran: Callable[[], None], turn: Turn | None,
    traceparent: str | None,
) -> None:  # fmt: skip
    claim = job.claim
    full: FullLog | None = None
    try:
        with tracing.span("stockade.launch"):
            spec = _attempt_spec(worker, slot, claim)
            if traceparent is not None:  # a new dict: the spec's env is shared
                spec.env = {**spec.env, "TRACEPARENT": traceparent}
        if worker.options.full_logs is not None:
            full = FullLog.open(worker.options.full_logs, claim.job_id, claim.run)
        head, tail = log_budget(claim)
        sink = StoreLogSink(
            log_writer(worker), claim.job_id, claim.run, head=head, tail=tail,
            whole=full.where if full is not None else None,
        )  # fmt: skip
        progress = StoreProgressSink(progress_writer(worker), claim.job_id, claim.run)
        sinks: list[Sink] = [sink, progress] if full is None else [sink, progress, full.sink]
        # The log lives in the store (the sink); a log file on this worker's
        # disk would be a second copy no other machine can read, at a file
        # creation per attempt.
        result = await run(
            spec, claim.input, sinks=sinks, sandbox=slot.sandbox, cancel=job.cancel,
            log_file=False, released=ran, turn=turn,
        )  # fmt: skip
    except UsageError as exc:
        result = _failed(claim, Reason.INVALID_JOB, describe_error(exc))
    except (OSError, StockadeError) as exc:
        job.advance(Phase.RECORDING)
        log.warning(
            "job %s: infrastructure error: %s", claim.job_id, describe_error(exc),
            extra=job_fields(worker.id, claim),
        )  # fmt: skip
        if turn is None or turn.launched:  # a job still waiting for its turn is not in the slot
            await asyncio.get_running_loop().run_in_executor(None, _reset, slot)
        ran()
        await record(
            worker, job, "release", reason=Reason.INFRASTRUCTURE, error=describe_error(exc)
        )
        return
    finally:
        if full is not None:
            full.close()
    ran()
    job.advance(Phase.RECORDING)
    if job.interrupt == "superseded":
        worker.counters.count("superseded")
        log.warning(
            "job %s: lease lost, attempt %d not recorded", claim.job_id, claim.run,
            extra=job_fields(worker.id, claim),
        )  # fmt: skip
        return
    if result.signal == signal.SIGKILL and worker.lease_fence.passed(claim.job_id):
        # Killed by the fence: its lease was not renewed in time. Recovery
        # records the attempt lost once the lease expires.
        worker.counters.count("fenced")
        log.warning("job %s: lease not renewed in time, attempt %d killed", claim.job_id, claim.run)
        return
    if job.interrupt == "shutdown" and result.outcome is Outcome.CANCELLED:
        await record(worker, job, "release", reason=Reason.WORKER_SHUTDOWN)
        return
    if result.outcome is Outcome.TIMED_OUT:
        worker.counters.count("timed_out")
    await record(worker, job, "finish", result=result)


def _attempt_spec(worker: JobHost, slot: Slot, claim: Claim) -> RunSpec:
    """The runner spec of ``claim``'s attempt in the sandbox it must run in:
    its declared profile's, else the worker's default. Raises
    :class:`SandboxError` when ``slot`` is not set up in that sandbox now."""
    spec = run_spec_for(claim, worker.options.data_dir)
    profile = declared_profile(claim)
    if profile is not None:
        spec = prepare_spec(spec, profile)
    elif worker.options.prepare is not None:
        spec = worker.options.prepare(spec)
    if worker.options.reattach:
        spec.spool_dir = str(worker.spool)
    if slot.sandbox is None:  # the slot is being set up again (another job broke it)
        raise SandboxError(f"slot {slot.index} is being set up again")
    if not slot.runs_as_declared(profile):  # defence in depth: never run weaker
        raise SandboxMismatch(slot.index, None if profile is None else profile.backend)
    return spec


def log_writer(worker: JobHost) -> Writer:
    """Where a job's output chunks go: the worker's store, off its event loop."""
    journal = worker.astore.store.journal

    async def write(chunks: Sequence[dict[str, Any]]) -> None:
        await worker.astore.once(journal.append_logs, chunks)

    return write


def progress_writer(worker: JobHost) -> ProgressWriter:
    """Where a job's progress commands go: the worker's store, off its event loop."""
    journal = worker.astore.store.journal

    async def write(job_id: str, attempt: int, data: dict[str, Any]) -> None:
        await worker.astore.once(journal.record_progress, job_id, attempt, data)

    return write


def _failed(claim: Claim, reason: str, error: str) -> Result:
    result = Result(claim.job_id, claim.task, claim.run, Outcome.FAILED, reason=reason)
    result.error, result.state = error, dict(claim.state)
    return result


def _reset(slot: Slot) -> None:
    try:
        slot.reset()
    except StockadeError as exc:
        log.warning("slot %d: cannot set up again: %s", slot.index, exc.message)


async def record(
    worker: JobHost,
    job: Running,
    how: str,
    *,
    result: Result | None = None,
    reason: str = "",
    error: str | None = None,
) -> None:
    """Record the end (``finish``) or give the job back (``release``), retrying
    while the store is down until the worker is forced to stop."""
    manager, claim = worker.astore.store.jobs, job.claim
    try:
        with tracing.span("stockade.record", None, {"stockade.outcome": result and result.outcome}):
            if how == "finish":
                assert result is not None
                state = await worker.recorder.finish(claim, result)
            else:
                state = await worker.astore.call(
                    manager.release, claim, reason=reason, error=error,
                    transient=reason == Reason.INFRASTRUCTURE, until=worker.forced,
                )  # fmt: skip
    except StoreUnavailable:
        log.error(
            "job %s: could not record attempt %d (store down)", claim.job_id, claim.run,
            extra=job_fields(worker.id, claim),
        )  # fmt: skip
        return
    if state is None:
        worker.counters.count("superseded")
    elif how == "release" and state is JobState.QUEUED:
        worker.counters.count("released")
    else:
        worker.counters.count(_COUNTER[state])
    if log.isEnabledFor(logging.DEBUG):
        fields = job_fields(worker.id, claim)
        log.debug("job %s attempt %d: %s", claim.job_id, claim.run, state, extra=fields)
