"""The state of one pipeline run: steps, their jobs, and how each ended.

The scheduler mutates these objects; the faces (live view, plain log,
JSON stream, JUnit) only read them.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from stockade.pipeline.test2json import TestCase
from stockade.runplan.model import PlainStep, PlainTask

if TYPE_CHECKING:
    from stockade.runner.events import Sink

__all__ = [
    "TAIL_LINES", "Job", "Observer", "Reuse", "Reused", "RunHooks", "RunState", "Status",
    "StepState",
]  # fmt: skip

TAIL_LINES = 20
"""Lines of a job's output kept to show when it fails."""


class Status(StrEnum):
    """Where a job, a step or the whole run is."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        """Whether nothing more will happen to it."""
        return self not in (Status.PENDING, Status.RUNNING)


class Job:
    """One job of a step: the step's task for one item (or the only one).

    A plain class, not a dataclass: the run's classes are made at every
    ``stockade run``'s start-up, where generating their methods showed."""

    def __init__(
        self, step: str, key: str | None, item: Any, index: int, *, priority: int = 0
    ) -> None:
        self.step = step
        self.key = key
        self.item = item
        self.index = index
        self.priority = priority
        self.deps: list[Job] = []
        self.status = Status.PENDING
        self.reason: str | None = None
        self.outputs: dict[str, Any] = {}
        self.exit_code: int | None = None
        self.attempts = 0
        self.job_id: str | None = None
        self.log_path: str | None = None
        self.started: float | None = None
        self.finished: float | None = None
        self.last_line = ""
        #: The job's latest ``::progress``: percent (0-100) and message, if any.
        self.progress: tuple[float, str] | None = None
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.tests: list[TestCase] = []
        self.cached_from: str | None = None  # the run whose stored success it reused
        #: That success came from the result cache, not a rerun's source.
        self.from_cache = False
        self.inputs: str | None = None  # digest of its step's ``inputs:`` (what it is made from)

    def __repr__(self) -> str:
        return f"Job({self.name!r}, {self.status.value})"

    @property
    def cached(self) -> bool:
        """Whether its result was reused (from the result cache or a rerun's
        source run): it did not run."""
        return self.cached_from is not None

    @property
    def reuse_label(self) -> str:
        """``cached`` (from the result cache) or ``reused`` (from a rerun's source)."""
        return "cached" if self.from_cache else "reused"

    @property
    def name(self) -> str:
        """``step`` or ``step[key]``."""
        return self.step if self.key is None else f"{self.step}[{self.key}]"

    @property
    def duration(self) -> float | None:
        """Seconds it ran, once started."""
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started

    def to_dict(self) -> dict[str, Any]:
        """The job as plain data for JSON output and the run record."""
        return {
            "job": self.name,
            "step": self.step,
            "item": self.key,
            "status": self.status.value,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "attempts": self.attempts,
            "job_id": self.job_id,
            "duration": None if self.duration is None else round(self.duration, 3),
            "outputs": self.outputs,
            "log": self.log_path,
            "tests": [test.to_dict() for test in self.tests],
            "cached": self.cached and self.from_cache,
            "reused": self.cached and not self.from_cache,
        }


class StepState:
    """One step: its spec, and its jobs once its items are known."""

    def __init__(self, name: str, spec: PlainStep) -> None:
        self.name = name
        self.spec = spec
        self.jobs: list[Job] = []
        self.expanded = False
        self.status = Status.PENDING
        self.reason: str | None = None

    def __repr__(self) -> str:
        return f"StepState({self.name!r}, {self.status.value})"

    def counts(self) -> dict[str, int]:
        """Jobs per status (only the statuses present)."""
        out: dict[str, int] = {}
        for job in self.jobs:
            out[job.status.value] = out.get(job.status.value, 0) + 1
        return out

    def finish(self) -> None:
        """Set the step's status from its jobs once they are all done."""
        if not self.expanded or not all(job.status.done for job in self.jobs):
            return
        states = {job.status for job in self.jobs}
        if Status.FAILED in states:
            self.status = Status.FAILED
        elif Status.CANCELLED in states:
            self.status = Status.CANCELLED
        elif states == {Status.SKIPPED}:
            self.status = Status.SKIPPED
            self.reason = self.reason or self.jobs[0].reason
        else:
            self.status = Status.SUCCEEDED

    @property
    def ok(self) -> bool:
        """Whether dependents may run: it succeeded, or its failure is allowed."""
        if self.status is Status.SUCCEEDED:
            return True
        return self.spec.continue_on_error and self.status is Status.FAILED


class RunState:
    """The whole run."""

    def __init__(
        self,
        pipeline: str,
        run_id: str,
        steps: dict[str, StepState],
        started: float | None = None,
        *,
        concurrency: int = 1,
        params: dict[str, Any] | None = None,
        rerun_tests: dict[str, list[str]] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.run_id = run_id
        self.steps = steps
        self.started = time.time() if started is None else started
        self.finished: float | None = None
        self.status = Status.RUNNING
        self.concurrency = concurrency
        #: Problems that did not fail the run (a slot's sandbox not taken down).
        self.warnings: list[str] = []
        #: The pipeline's parameters (``${{ params.NAME }}``), defaults included.
        self.params: dict[str, Any] = {} if params is None else params
        #: Per job name, the tests a rerun runs again (``${{ rerun.tests }}``).
        self.rerun_tests: dict[str, list[str]] = {} if rerun_tests is None else rerun_tests

    def __repr__(self) -> str:
        return f"RunState({self.pipeline!r}, {self.run_id!r}, {self.status.value})"

    def jobs(self) -> list[Job]:
        """Every job known so far, step by step."""
        return [job for step in self.steps.values() for job in step.jobs]

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (until it finished)."""
        return (self.finished or time.time()) - self.started

    def to_dict(self) -> dict[str, Any]:
        """The run as plain data: steps, jobs, status."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "status": self.status.value,
            "duration": round(self.elapsed, 3),
            "steps": {
                name: {"status": s.status.value, "reason": s.reason, "counts": s.counts()}
                for name, s in self.steps.items()
            },
            "jobs": [job.to_dict() for job in self.jobs()],
            "warnings": list(self.warnings),
        }


class Observer(Protocol):
    """Receives the run's events as they happen; must not block."""

    def event(self, kind: str, run: RunState, job: Job | None, data: dict[str, Any]) -> None:
        """``kind`` is one of ``run_start``, ``step_start``, ``step_finish``,
        ``job_start``, ``job_output``, ``job_finish``, ``run_finish``."""


class RunHooks(Protocol):
    """What a run's recorder needs besides the events: each job's task as
    planned, and a sink for each attempt's output. The scheduler calls them;
    it knows nothing of where they lead (the engine records them in the store)."""

    def planned(self, job: Job, task_name: str, task: PlainTask, input: Any) -> None:
        """``job``'s task and input are known (before it runs or is reused)."""

    def attempt_sinks(self, job: Job, attempt: int) -> list[Sink]:
        """Extra sinks for ``job``'s attempt number ``attempt``, which starts now."""


@dataclass
class Reused:
    """A job's recorded success in an earlier run, to take instead of running it."""

    run_id: str
    outputs: dict[str, Any]
    exit_code: int | None = None
    tests: list[TestCase] = field(default_factory=list)
    inputs: str | None = None  # the digest of its inputs when it ran


@dataclass
class Reuse:
    """The results a rerun takes from its source run instead of running jobs.

    ``results`` maps job names (``step`` or ``step[item]``) to their recorded
    successes. With ``with_upstream`` (``rerun --failed``) a job is reused only
    if everything it depends on was reused too, so whatever depends on a job
    that runs again runs again; without it (``rerun STEP``) every job found
    in ``results`` is reused as is. A job whose step declares ``inputs:`` is
    reused exactly when their digest is the recorded one, whatever ran
    upstream: the digest covers its task as rendered from upstream outputs.
    """

    results: dict[str, Reused] = field(default_factory=dict)
    with_upstream: bool = True
    reused: set[str] = field(default_factory=set)
    #: ``(step, item)`` for ``rerun STEP[/ITEM]``: only those jobs run; any
    #: other job without a result to reuse is skipped, never run.
    target: tuple[str, str | None] | None = None
    #: Job names for ``rerun --failed-tests``: only those run, as with ``target``.
    targets: set[str] | None = None

    def may_run(self, job: Job) -> bool:
        """Whether ``job`` may run rather than be skipped (it is the target,
        there is no target, or it has a result to reuse instead)."""
        if job.name in self.results:
            return True
        if self.targets is not None:
            return job.name in self.targets
        if self.target is None:
            return True
        step, item = self.target
        return job.step == step and (item is None or job.key == item)

    def take(self, run: RunState, step: StepState, job: Job) -> Reused | None:
        """The result ``job`` reuses, if it may reuse one (and note that it did)."""
        found = self.results.get(job.name)
        if found is None or found.inputs != job.inputs:
            return None  # never succeeded, or made from something else now
        if self.with_upstream and job.inputs is None:  # (same inputs: nothing else matters)
            upstream = [
                other
                for name in step.spec.upstream()
                if name in run.steps
                for other in run.steps[name].jobs
            ]
            if any(dep.name not in self.reused for dep in [*job.deps, *upstream]):
                return None
        self.reused.add(job.name)
        return found
