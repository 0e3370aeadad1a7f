"""Planning: when a step may expand, into which jobs, and what each runs.

A step expands once every step in its ``needs`` is done and every step in
its ``needs_each`` has its items. Expanding evaluates ``if`` and
``for_each`` against the outcomes and outputs known by then and creates
one :class:`~stockade.pipeline.model.Job` per item, wired to the jobs it
waits for (the same item of a ``needs_each`` step; the items an item
``needs`` when the list is a ``graph``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from stockade.pipeline.expr import ExprError, evaluate, parse, render, to_text, truthy
from stockade.pipeline.model import Job, RunState, Status, StepState
from stockade.runplan.logic import condition_text
from stockade.runplan.model import PlainTask

__all__ = [
    "JobPlan",
    "SkipStep",
    "blocking_need",
    "can_expand",
    "context_for",
    "expand",
    "job_plan",
]


class SkipStep(Exception):
    """The step will not run; the message says why."""


def can_expand(step: StepState, run: RunState) -> bool:
    """Whether everything ``step`` needs to know before expanding is known."""
    needs = all(run.steps[n].status.done for n in step.spec.needs)
    each = all(run.steps[n].expanded for n in step.spec.needs_each)
    return needs and each


def _step_view(step: StepState, key: str | None) -> dict[str, Any]:
    """What ``steps.NAME`` shows to an expression."""
    items = {job.key: job.outputs for job in step.jobs if job.key is not None}
    same = next((job for job in step.jobs if job.key == key), None)
    outputs: dict[str, Any] = {}
    if same is not None:
        outputs = same.outputs
    elif len(step.jobs) == 1:
        outputs = step.jobs[0].outputs
    return {"outputs": outputs, "outcome": step.status.value, "items": items}


def context_for(run: RunState, step: StepState, item: Any, key: str | None) -> dict[str, Any]:
    """The names an expression of ``step`` (for ``item``) can read."""
    steps = {name: _step_view(run.steps[name], key) for name in step.spec.upstream()}
    return {
        "item": item,
        "steps": steps,
        "env": dict(os.environ),
        "pipeline": {"name": run.pipeline, "run_id": run.run_id},
        "params": dict(run.params),
        "rerun": {"tests": list(run.rerun_tests.get(_job_name(step.name, key), []))},
        "outcome": _needs_outcome(step, run),
    }


def _job_name(step: str, key: str | None) -> str:
    return step if key is None else f"{step}[{key}]"


def _needs_outcome(step: StepState, run: RunState) -> str:
    states = [run.steps[n] for n in step.spec.needs]
    if any(s.status is Status.CANCELLED for s in states):
        return "cancelled"
    if any(not s.ok for s in states):
        return "failure"
    return "success"


def blocking_need(step: StepState, run: RunState) -> str | None:
    """Why ``step`` may not run by default (a need that did not succeed), if so."""
    for name in step.spec.needs:
        need = run.steps[name]
        if not need.ok:
            return f"needs {name}, which {need.status.value}"
    return None


def item_key(item: Any, index: int, seen: set[str]) -> str:
    """A job's name within its step: the item, its ``name``, or a number."""
    if isinstance(item, Mapping) and "name" in item:
        key = to_text(item["name"])
    elif isinstance(item, str | int | float) and not isinstance(item, bool):
        key = to_text(item)
    else:
        key = str(index)
    return key if key not in seen else f"{key}#{index}"


def _items(step: StepState, run: RunState) -> list[Any] | None:
    source = step.spec.for_each
    if source is None:
        return None
    value = (
        render(source, context_for(run, step, None, None)) if isinstance(source, str) else source
    )
    if isinstance(value, str):
        value = [line.strip() for line in value.splitlines() if line.strip()]
    if not isinstance(value, list):
        raise SkipStep(f"for_each gave {type(value).__name__}, not a list")
    return value


def expand(step: StepState, run: RunState) -> list[Job]:
    """Create ``step``'s jobs; raise :class:`SkipStep` when it must not run."""
    spec = step.spec
    if spec.if_ is not None:
        context = context_for(run, step, None, None)
        try:
            wanted = truthy(evaluate(parse(condition_text(spec.if_)), context))
        except ExprError as exc:
            raise SkipStep(f"if: {exc}") from None
        if not wanted:
            raise SkipStep(f"if: {spec.if_} is false")
    else:
        blocking = blocking_need(step, run)
        if blocking is not None:
            raise SkipStep(blocking)
    try:
        items = _items(step, run)
    except ExprError as exc:
        raise SkipStep(f"for_each: {exc}") from None
    if items is None:
        return [Job(step.name, None, None, 0)]
    jobs: list[Job] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        key = item_key(item, index, seen)
        seen.add(key)
        priority = item.get("priority", 0) if isinstance(item, Mapping) else 0
        job = Job(
            step.name, key, item, index, priority=priority if isinstance(priority, int) else 0
        )
        for name in spec.needs_each:
            job.deps += [other for other in run.steps[name].jobs if other.key == key]
        jobs.append(job)
    if spec.graph:
        _wire_graph(jobs)
    return jobs


def _wire_graph(jobs: list[Job]) -> None:
    """Make each item wait for the items its ``needs`` names."""
    by_key = {job.key: job for job in jobs}
    for job in jobs:
        needs = job.item.get("needs", []) if isinstance(job.item, Mapping) else []
        for name in needs if isinstance(needs, list) else [needs]:
            other = by_key.get(to_text(name))
            if other is None:
                job.status, job.reason = Status.SKIPPED, f"needs unknown item {to_text(name)!r}"
            elif other is not job:
                job.deps.append(other)


class JobPlan:
    """What one job runs: the task (rendered for its item) and its input."""

    __slots__ = ("input", "task", "task_name")

    def __init__(self, task_name: str, task: PlainTask, input: Any) -> None:
        self.task_name = task_name
        self.task = task
        self.input = input


def job_plan(run: RunState, step: StepState, job: Job) -> JobPlan:
    """The task and input of ``job`` with every ``${{ }}`` evaluated.

    Raises :class:`~stockade.pipeline.expr.ExprError` when an expression
    cannot be evaluated for this item. The step's task was merged with
    ``defaults`` when the plan was compiled.
    """
    task = step.spec.task
    context = context_for(run, step, job.item, job.key)
    changes: dict[str, Any] = {}
    if task.run is not None:
        changes["run"] = to_text(render(task.run, context))
    if task.command is not None:
        changes["command"] = [to_text(render(arg, context)) for arg in task.command]
    env = {**task.env, **step.spec.env}
    changes["env"] = {key: to_text(render(value, context)) for key, value in env.items()}
    if task.workdir is not None:
        changes["workdir"] = to_text(render(task.workdir, context))
    job_input = render(step.spec.input, context)
    if job_input is None and job.key is not None:
        job_input = {"item": job.item}
    return JobPlan(step.spec.task_name, task.replace(**changes), job_input)
