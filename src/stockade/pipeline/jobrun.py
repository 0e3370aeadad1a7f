"""Running one pipeline job: slot, sandbox, attempts, outputs, test events.

A :class:`JobRunner` owns the run's slots. A job takes a free slot, runs
its task through :func:`stockade.runner.attempt.run` in that slot's
sandbox (set up on first use for the task's profile, or the slot's
``local`` one when the task names none), retries by the task's policy, and gives the
slot back. Its output feeds the job's last line and tail, and for
``events: test2json`` steps the per-test results; an ``events: junit``
step's results are read from the report its job wrote, once it ended.

A run across machines gives the runner a :class:`Remote`: once the reuse
and cache lookups missed, the job goes to it instead of a local slot's
sandbox, and its result is taken exactly as a local attempt's would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import Callable
from typing import Protocol

from stockade.errors import StockadeError
from stockade.pipeline.cache import ResultCache, cache_key, inputs_digest
from stockade.pipeline.expr import ExprError
from stockade.pipeline.junit import JobReport, ReportError
from stockade.pipeline.model import Job, Reuse, RunHooks, RunState, Status, StepState
from stockade.pipeline.plan import JobPlan, job_plan
from stockade.pipeline.test2json import Test2Json
from stockade.runner.attempt import new_job_id, run
from stockade.runner.events import Event, Sink
from stockade.runner.policy import retries
from stockade.runner.result import Outcome, Result
from stockade.runner.spec import RunSpec
from stockade.runplan.model import RunPlan
from stockade.sandbox.base import Sandbox

__all__ = ["JobRunner", "Remote", "SinksFor"]

Emit = Callable[..., None]
#: The sinks of one attempt of a job (given the attempt's number).
SinksFor = Callable[[int], list[Sink]]


class Remote(Protocol):
    """Runs a planned job elsewhere (``stockade run --fleet``: on workers)."""

    async def run(
        self, plan: JobPlan, job: Job, sinks_for: SinksFor, cancel: asyncio.Event
    ) -> Result:
        """Run ``job`` to its end (all its attempts); its last attempt's result.

        Output of attempt N goes to ``sinks_for(N)``'s sinks, which are closed
        (``aclose``) once the job ended. ``cancel`` set: stop the job."""
        ...


class _JobSink:
    """Receives one attempt's events: last line, tail, progress, test events."""

    def __init__(self, job: Job, emit: Emit, tests: Test2Json | None) -> None:
        self.job = job
        self.emit_run = emit
        self.tests = tests
        self.partial = {"stdout": "", "stderr": ""}

    def emit(self, event: Event) -> None:
        if event.kind == "progress":
            value, message = float(event.data["value"]), str(event.data.get("message") or "")
            self.job.progress = (value, message)
            self.emit_run("job_progress", self.job, value=value, message=message)
            return
        if event.kind != "output":
            return
        stream = str(event.data.get("stream", "stdout"))
        text = self.partial.get(stream, "") + event.text
        *lines, self.partial[stream] = text.split("\n")
        for line in lines:
            self._line(stream, line)

    def _line(self, stream: str, line: str) -> None:
        if self.tests is not None and stream == "stdout":
            finished = self.tests.feed(line)
            if line.lstrip().startswith("{"):
                if finished is not None:
                    self.emit_run("test", self.job, **finished.to_dict())
                return
        if line.strip():
            self.job.last_line = line
            self.job.tail.append(line)
            self.emit_run("job_output", self.job, stream=stream, text=line)

    async def aclose(self) -> None:
        for stream, rest in self.partial.items():
            if rest:
                self._line(stream, rest)
        self.partial = {"stdout": "", "stderr": ""}

    @property
    def dropped(self) -> int:
        return 0


class JobRunner:
    """Runs jobs in ``slots`` slots, each with its own sandboxes."""

    def __init__(
        self,
        plan: RunPlan,
        run_state: RunState,
        slots: int,
        cancel: asyncio.Event,
        emit: Emit,
        data_dir: str | None,
        hooks: RunHooks | None = None,
        reuse: Reuse | None = None,
        remote: Remote | None = None,
    ) -> None:
        self.plan = plan
        self.remote = remote
        self.hooks = hooks
        self.reuse = reuse
        self.run_state = run_state
        self.cancel = cancel
        self.emit = emit
        self.data_dir = data_dir
        self.free: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(slots):
            self.free.put_nowait(slot)
        self.sandboxes: dict[tuple[int, str], Sandbox] = {}
        self.cache = ResultCache(data_dir or os.environ.get("STOCKADE_DATA_DIR") or ".stockade")

    async def run(self, step: StepState, job: Job) -> None:
        """Run ``job`` to its end; its status and outputs are set on it."""
        slot = await self.free.get()
        try:
            await self._run(step, job, slot)
        except StockadeError as exc:
            job.status, job.reason = Status.FAILED, str(exc)
        except ExprError as exc:
            job.status, job.reason = Status.FAILED, f"expression: {exc}"
        finally:
            self.free.put_nowait(slot)

    async def _earlier(self, step: StepState, job: Job, plan: JobPlan) -> tuple[bool, str | None]:
        """Take the job's result from the rerun's source run or the result
        cache if either has it; ``(taken, cache key)``."""
        reused = self.reuse.take(self.run_state, step, job) if self.reuse else None
        if reused is not None:
            job.outputs, job.exit_code, job.tests = (
                dict(reused.outputs),
                reused.exit_code,
                reused.tests,
            )
            job.cached_from, job.status = reused.run_id, Status.SUCCEEDED
            return True, None
        key = await cache_key(self.run_state, step, job, plan)
        stored = self.cache.get(key) if key is not None else None
        if stored is None:
            return False, key
        self.cache.restore(job, stored)
        job.status = Status.SUCCEEDED
        if self.reuse is not None:  # it counts as reused for what depends on it
            self.reuse.reused.add(job.name)
        return True, key

    async def _run(self, step: StepState, job: Job, slot: int) -> None:
        plan = job_plan(self.run_state, step, job)
        job.inputs = await inputs_digest(self.run_state, step, job, plan)
        if self.hooks is not None:
            self.hooks.planned(job, plan.task_name, plan.task, plan.input)
        taken, key = await self._earlier(step, job, plan)
        if taken:
            return
        events = step.spec.events
        tests = Test2Json(job.key or "") if events and events.format == "test2json" else None
        job.job_id = job.job_id or new_job_id()
        # The report's path is looked at before the job runs: a file there
        # that the job leaves untouched is one left from before.
        if self.remote is not None:
            workspace = os.path.abspath(plan.task.workdir or os.getcwd())  # as the fleet job's
            junit = JobReport(workspace, events.path) if events and events.path else None
            result = await self.remote.run(
                plan, job, lambda attempt: self._sinks(job, attempt, tests), self.cancel
            )
        else:
            spec = plan.task.to_run_spec(
                plan.task_name,
                secrets=self.plan.resolve_secrets(plan.task.secrets),
                data_dir=self.data_dir,
            )
            sandbox, spec = await self._sandbox(plan, spec, slot)
            workspace = os.path.abspath(spec.workdir or os.getcwd())  # as the runner's
            junit = JobReport(workspace, events.path) if events and events.path else None
            result = await self._attempts(plan, spec, job, sandbox, tests)
        job.exit_code, job.outputs, job.log_path = result.exit_code, result.outputs, result.log_path
        if tests is not None:
            job.tests = tests.results()
        report = None
        if junit is not None and result.outcome is not Outcome.CANCELLED:
            try:
                job.tests = await asyncio.to_thread(junit.read)  # the job's file
            except ReportError as exc:
                report = exc.message
        if report is not None and result.outcome is Outcome.SUCCEEDED:
            job.status, job.reason = Status.FAILED, report
        elif result.outcome is Outcome.SUCCEEDED:
            job.status = Status.SUCCEEDED
            if key is not None:
                with contextlib.suppress(OSError):
                    self.cache.put(key, self.run_state, job)
        elif result.outcome is Outcome.CANCELLED:
            job.status, job.reason = Status.CANCELLED, "cancelled"
        else:
            job.status = Status.FAILED
            job.reason = _failure_reason(result) + (f"; {report}" if report else "")

    async def _attempts(
        self,
        plan: JobPlan,
        spec: RunSpec,
        job: Job,
        sandbox: Sandbox | None,
        tests: Test2Json | None,
    ) -> Result:
        task = plan.task
        attempt = 1
        while True:
            job.attempts = attempt
            current = dataclasses.replace(spec, attempt=attempt, job_id=job.job_id)
            result = await run(
                current, plan.input, sinks=self._sinks(job, attempt, tests), sandbox=sandbox,
                cancel=self.cancel,
            )  # fmt: skip
            again = retries(
                result.outcome, attempts=attempt, max_attempts=task.max_attempts,
                on_timeout=task.timeout_action,
            )  # fmt: skip
            if not again or self.cancel.is_set():
                return result
            self.emit("job_retry", job, attempt=attempt, outcome=result.outcome.value)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cancel.wait(), task.retry_delay(attempt))
            attempt += 1

    def _sinks(self, job: Job, attempt: int, tests: Test2Json | None) -> list[Sink]:
        """Attempt ``attempt``'s sinks: the job's own (last line, tail, tests)
        and the hooks' (the store's log)."""
        sinks: list[Sink] = [_JobSink(job, self.emit, tests)]
        if self.hooks is not None:
            sinks += self.hooks.attempt_sinks(job, attempt)
        return sinks

    async def _sandbox(
        self, plan: JobPlan, spec: RunSpec, slot: int
    ) -> tuple[Sandbox | None, RunSpec]:
        """The slot's sandbox for the task's profile (set up on first use).

        A task naming none gets the slot's ``local`` sandbox, also set up once:
        making and removing a cgroup per attempt was a tenth of what a short
        job cost the run (``python -m benchmarks pipeline``); each attempt's
        end still kills whatever it left in the slot's cgroup."""
        name = plan.task.sandbox
        profile = self.plan.sandbox_profile(name)
        if name is None or profile is None:
            local = self.sandboxes.get((slot, ""))
            if local is None:
                from stockade.sandbox.local import LocalSandbox

                local = LocalSandbox(slot=f"{self.run_state.run_id}-{slot}-local")
                await asyncio.to_thread(local.setup)
                self.sandboxes[(slot, "")] = local
            # The user's own pipeline, run as themselves: as `stockade exec`, a
            # local job has their environment (less stockade's own STOCKADE_*).
            return local, dataclasses.replace(spec, inherit_env=True)
        from stockade.sandbox.registry import create, prepare_spec

        sandbox = self.sandboxes.get((slot, name))
        if sandbox is None:
            sandbox = create(profile, slot=f"{self.run_state.run_id}-{slot}")
            await asyncio.to_thread(sandbox.setup)
            self.sandboxes[(slot, name)] = sandbox
        return sandbox, prepare_spec(spec, profile, own=True)

    async def close(self) -> None:
        """Clean up every sandbox the slots set up; each one that cannot be
        taken down is a warning of the run (it does not fail it)."""
        for (slot, profile), sandbox in self.sandboxes.items():
            try:
                await asyncio.to_thread(sandbox.cleanup)
            except (StockadeError, OSError) as exc:
                what = exc.message if isinstance(exc, StockadeError) else str(exc)
                warning = f"slot {slot} ({profile or 'local'}): cleanup failed: {what}"
                self.run_state.warnings.append(warning)
        self.sandboxes.clear()


def _failure_reason(result: Result) -> str:
    if result.error:
        return result.error
    if result.outcome is Outcome.TIMED_OUT:
        return result.reason or "timed out"
    if result.signal is not None:
        return f"killed by signal {result.signal}"
    if result.exit_code is not None:
        return f"exit code {result.exit_code}"
    return result.reason or result.outcome.value
