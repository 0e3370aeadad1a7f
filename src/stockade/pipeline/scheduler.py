"""The in-process scheduler: plans the DAG as it goes and runs jobs in slots.

One asyncio loop expands steps whose needs are met, starts ready jobs in
their order while the pipeline's and the step's concurrency allow, and
waits for any to finish. A job whose dependency failed is skipped with the
reason; after a required failure (without ``keep_going``) no further step
starts. :meth:`Scheduler.cancel` stops every running job through the
runner (stop signal, grace, SIGKILL) and skips the rest; :meth:`force`
cancels the jobs' tasks outright. Given a ``remote``, the jobs run there
(workers, ``stockade run --fleet``) rather than in local slots; the graph is
resolved here all the same.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from stockade.pipeline.jobrun import JobRunner, Remote
from stockade.pipeline.model import Job, Observer, Reuse, RunHooks, RunState, Status, StepState
from stockade.pipeline.plan import SkipStep, blocking_need, can_expand, expand
from stockade.pipeline.traced import TraceObserver
from stockade.runner.attempt import new_job_id
from stockade.runplan.model import PlainPipeline, RunPlan

if TYPE_CHECKING:
    from stockade.spec import Config
    from stockade.spec.pipeline import PipelineSpec

__all__ = ["Scheduler", "as_plan", "cpu_count"]


def cpu_count() -> int:
    """CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _limit(value: int | str | None, default: int) -> int:
    if value == "auto":
        return cpu_count()
    return value if isinstance(value, int) else default


def _params(pipeline: PlainPipeline, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's parameters: ``given`` over the declared defaults."""
    declared = {n: p.default for n, p in pipeline.params.items() if p.default is not None}
    return declared | dict(given or {})


def as_plan(
    plan: RunPlan | Config, name: str, pipeline: PlainPipeline | PipelineSpec
) -> tuple[RunPlan, PlainPipeline]:
    """The plan and pipeline to run: as given when plain, else compiled from
    the models (:func:`stockade.runplan.compile.plan_of`)."""
    if isinstance(plan, RunPlan) and isinstance(pipeline, PlainPipeline):
        return plan, pipeline
    from stockade.runplan.compile import plan_of
    from stockade.spec import Config
    from stockade.spec.pipeline import PipelineSpec

    if not isinstance(plan, Config) or not isinstance(pipeline, PipelineSpec):
        raise TypeError("give a RunPlan and its PlainPipeline, or a Config and a PipelineSpec")
    compiled = plan_of(plan, name, pipeline)
    return compiled, compiled.pipelines[name]


class Scheduler:
    """Runs one pipeline to the end (or until cancelled)."""

    def __init__(
        self,
        plan: RunPlan | Config,
        name: str,
        pipeline: PlainPipeline | PipelineSpec,
        *,
        run_id: str,
        jobs: int | None = None,
        keep_going: bool = False,
        only: Sequence[str] = (),
        observers: Sequence[Observer] = (),
        data_dir: str | None = None,
        hooks: RunHooks | None = None,
        reuse: Reuse | None = None,
        params: Mapping[str, Any] | None = None,
        rerun_tests: Mapping[str, list[str]] | None = None,
        remote: Remote | None = None,
    ) -> None:
        plan, pipeline = as_plan(plan, name, pipeline)
        steps = {n: StepState(n, s) for n, s in pipeline.steps.items()}
        concurrency = jobs or _limit(pipeline.concurrency, cpu_count())
        if jobs is None and pipeline.concurrency == "auto":
            # a step's explicit `concurrency: N` wins over the CPU-count default
            steps_asked = [s.concurrency for s in pipeline.steps.values()]
            concurrency = max([concurrency, *(n for n in steps_asked if isinstance(n, int))])
        self.run = RunState(
            name, run_id, steps, concurrency=concurrency,
            params=_params(pipeline, params), rerun_tests=dict(rerun_tests or {}),
        )  # fmt: skip
        self.keep_going = keep_going
        self.observers: list[Observer] = [*observers, TraceObserver()]
        self.cancelled = asyncio.Event()
        self.stopping: str | None = None
        self.running: dict[asyncio.Task[None], Job] = {}
        self.reuse = reuse
        self.runner = JobRunner(
            plan,
            self.run,
            concurrency,
            self.cancelled,
            self.emit,
            data_dir,
            hooks,
            reuse,
            remote,
        )
        self._select(only)

    def _select(self, only: Sequence[str]) -> None:
        """With ``--only``, run the named steps and what they need."""
        if not only:
            return
        keep: set[str] = set()
        stack = list(only)
        while stack:
            name = stack.pop()
            if name not in keep:
                keep.add(name)
                stack.extend(self.run.steps[name].spec.upstream())
        self.run.steps = {n: s for n, s in self.run.steps.items() if n in keep}

    def emit(self, kind: str, job: Job | None = None, **data: Any) -> None:
        """Tell every observer."""
        for observer in self.observers:
            observer.event(kind, self.run, job, data)

    def cancel(self) -> None:
        """Stop running jobs (cleanly) and start nothing more."""
        if not self.cancelled.is_set():
            self.cancelled.set()
            self.stopping = "cancelled"

    def force(self) -> None:
        """Cancel the jobs' tasks now; the runner still kills every process."""
        self.cancel()
        for task in self.running:
            task.cancel()

    async def execute(self) -> RunState:
        """Run the pipeline; return its final state."""
        self.emit("run_start")
        try:
            await self._loop()
        finally:
            for task in self.running:
                task.cancel()
            if self.running:
                await asyncio.gather(*self.running, return_exceptions=True)
            await self.runner.close()
        run = self.run
        run.finished = time.time()
        states = {s.status for s in run.steps.values()}
        if self.cancelled.is_set():
            run.status = Status.CANCELLED
        elif any(not s.ok and s.status is Status.FAILED for s in run.steps.values()):
            run.status = Status.FAILED
        elif Status.SUCCEEDED in states or not states:
            run.status = Status.SUCCEEDED
        else:
            run.status = Status.SKIPPED
        self.emit("run_finish")
        return run

    async def _loop(self) -> None:
        while True:
            self._expand()
            self._skip_blocked()
            self._start_ready()
            if not self.running:
                if self._finish_stalled():
                    continue
                return
            done, _ = await asyncio.wait(self.running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                job = self.running.pop(task)
                self._finished(job)

    def _expand(self) -> None:
        for step in self.run.steps.values():
            if step.expanded or not can_expand(step, self.run):
                continue
            if self.cancelled.is_set() or (self.stopping and step.spec.if_ is None):
                reason = blocking_need(step, self.run) or f"not started: {self.stopping}"
                self._skip_step(step, reason)
                continue
            try:
                step.jobs = expand(step, self.run)
            except SkipStep as exc:
                self._skip_step(step, str(exc))
                continue
            step.expanded = True
            step.status = Status.RUNNING
            self.emit("step_start", None, step=step.name, jobs=len(step.jobs))
            self._settle(step)

    def _skip_step(self, step: StepState, reason: str) -> None:
        step.expanded = True
        step.status, step.reason = Status.SKIPPED, reason
        self.emit("step_finish", None, step=step.name, status="skipped", reason=reason)

    def _settle(self, step: StepState) -> None:
        """Finish ``step`` if all its jobs are done, and say so."""
        if step.status is not Status.RUNNING:
            return
        step.finish()
        if step.status.done:
            self.emit("step_finish", None, step=step.name, status=step.status.value)

    def _skip_blocked(self) -> None:
        """Skip pending jobs whose dependency did not succeed, and those a
        ``rerun STEP[/ITEM]`` may neither run nor reuse."""
        changed = True
        while changed:
            changed = False
            for job in self.run.jobs():
                if job.status is not Status.PENDING:
                    continue
                if self.reuse is not None and not self.reuse.may_run(job):
                    self._skip(job, "not rerun: no success of it to reuse in the source run")
                    changed = True
                    continue
                bad = next((d for d in job.deps if d.status.done and not self._dep_ok(d)), None)
                if bad is not None or self.cancelled.is_set():
                    reason = "cancelled" if bad is None else f"needs {bad.name}, which {bad.status}"
                    self._skip(job, reason)
                    changed = True

    def _dep_ok(self, dep: Job) -> bool:
        if dep.status is Status.SUCCEEDED:
            return True
        step = self.run.steps[dep.step]
        return step.spec.continue_on_error and dep.status is Status.FAILED

    def _skip(self, job: Job, reason: str) -> None:
        job.status, job.reason = Status.SKIPPED, reason
        job.job_id = job.job_id or new_job_id()
        self.emit("job_finish", job, status="skipped", reason=reason)
        self._settle(self.run.steps[job.step])

    def _ordered(self, step: StepState) -> list[Job]:
        pending = [j for j in step.jobs if j.status is Status.PENDING]
        if step.spec.order == "alphabetical":
            return sorted(pending, key=lambda j: j.key or "")
        if step.spec.order == "priority":
            return sorted(pending, key=lambda j: (-j.priority, j.index))
        return pending

    def _start_ready(self) -> None:
        free = self.run.concurrency - len(self.running)
        for step in self.run.steps.values():
            if free <= 0 or self.cancelled.is_set():
                return
            limit = _limit(step.spec.concurrency, self.run.concurrency)
            active = sum(1 for j in self.running.values() if j.step == step.name)
            for job in self._ordered(step):
                if free <= 0 or active >= limit:
                    break
                if not all(self._dep_ok(d) for d in job.deps):
                    if step.spec.order != "declared":
                        break  # keep the step's order strict
                    continue
                job.status, job.started = Status.RUNNING, time.time()
                job.job_id = job.job_id or new_job_id()
                self.emit("job_start", job)
                task = asyncio.create_task(self.runner.run(step, job), name=job.name)
                self.running[task] = job
                free, active = free - 1, active + 1

    def _finished(self, job: Job) -> None:
        job.finished = time.time()
        if not job.status.done:  # its task was cancelled outright (a second Ctrl-C)
            job.status, job.reason = Status.CANCELLED, "cancelled (forced)"
        step = self.run.steps[job.step]
        self.emit("job_finish", job, status=job.status.value, reason=job.reason)
        required = job.status is Status.FAILED and not step.spec.continue_on_error
        if required and not self.keep_going and self.stopping is None:
            self.stopping = f"{job.name} failed"
        self._settle(step)

    def _finish_stalled(self) -> bool:
        """Nothing runs: skip what can never start (a dependency cycle among
        items); return whether anything changed."""
        stalled = [job for job in self.run.jobs() if job.status is Status.PENDING]
        for job in stalled:
            self._skip(job, "its dependencies form a cycle")
        waiting = [s for s in self.run.steps.values() if not s.expanded]
        for step in waiting:
            self._skip_step(step, "not started: what it needs never finished")
        return bool(stalled or waiting)
