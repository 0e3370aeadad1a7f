"""Pipelines: named graphs of steps under ``pipelines:`` in ``stockade.yaml``.

A step uses a task (``task: NAME``, or ``task:`` with the task's keys
inline, or just ``run:``/``command:``), waits for the steps in ``needs``,
may fan out over ``for_each`` (one job per item) and may run only ``if`` an
expression holds. :func:`pipeline_problems` checks what spans several keys
(unknown tasks and steps, cycles, expressions that do not parse or read a
step that is not upstream) on raw data, so the loader reports every
problem with its line, like the rest of the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from stockade.runplan.logic import condition_text, upstream
from stockade.spec.checks import Loc, did_you_mean, task_problems
from stockade.spec.params import ParamSpec
from stockade.spec.task import TaskSpec
from stockade.spec.types import EnvMap, Name, StrictModel, workspace_path

__all__ = [
    "CacheSpec",
    "Concurrency",
    "EventsSpec",
    "PipelineSpec",
    "StepSpec",
    "condition_text",
    "pipeline_problems",
]


def _concurrency(value: object) -> object:
    if value == "auto" or value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("concurrency is auto (the CPU count) or a whole number of at least 1")
    return value


Concurrency = Annotated[int | Literal["auto"] | None, BeforeValidator(_concurrency)]
"""``auto`` (the CPU count), a number of jobs at once, or unset."""


class CacheSpec(StrictModel):
    """A step's result cache: a job whose key matches a stored success is not run."""

    key: list[str] = Field(
        min_length=1,
        description=(
            "What the result depends on, besides the job's command, env and input: "
            "'files: GLOB' (contents of the matching files), 'env: NAME', or any text "
            "(${{ }} allowed)."
        ),
    )


class EventsSpec(StrictModel):
    """Where a step's per-test results come from.

    ``test2json``: its stdout carries ``go test -json`` events. ``junit``:
    its job writes a JUnit XML report at ``path`` (relative to the job's
    workspace), read when the job ends. ``events: test2json`` is short for
    ``events: {format: test2json}``.
    """

    format: Literal["test2json", "junit"] = Field(
        description="test2json (go test -json on stdout) or junit (a JUnit XML file)."
    )
    path: str | None = Field(
        default=None,
        description="For junit: the report the job writes, relative to its workspace.",
    )

    @field_validator("path")
    @classmethod
    def _inside_workspace(cls, value: str | None) -> str | None:
        return None if value is None else workspace_path(value, "path")

    @model_validator(mode="after")
    def _path_for_junit(self) -> Self:
        if self.format == "junit" and self.path is None:
            raise ValueError("junit needs the report's path: events: {format: junit, path: FILE}")
        if self.format == "test2json" and self.path is not None:
            raise ValueError("test2json events come on stdout: leave path out")
        return self


def _events(value: object) -> object:
    if value == "junit":
        raise ValueError("junit needs the report's path: events: {format: junit, path: FILE}")
    if isinstance(value, str):
        return {"format": value}
    return value


Events = Annotated[EventsSpec | None, BeforeValidator(_events)]
"""``test2json``, or ``{format: junit|test2json, path: FILE}``."""


class StepSpec(StrictModel):
    """One step of a pipeline: a task use, possibly fanned out."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, populate_by_name=True)

    task: Name | TaskSpec | None = Field(
        default=None, description="A task by name, or a task's keys inline."
    )
    run: str | None = Field(default=None, description="Shorthand for an inline task's run.")
    command: list[str] | None = Field(
        default=None, description="Shorthand for an inline task's command."
    )
    input: Any = Field(default=None, description="The job's input; may use ${{ }}.")
    env: EnvMap = Field(default_factory=dict, description="Extra variables; may use ${{ }}.")
    needs: list[Name] = Field(default_factory=list, description="Steps that must finish first.")
    needs_each: list[Name] = Field(
        default_factory=list,
        description="Fanned-out steps whose job for the same item must finish first.",
    )
    for_each: list[Any] | str | None = Field(
        default=None, description="A list, or an expression giving one: one job per item."
    )
    graph: bool = Field(
        default=False,
        description="for_each items are {name, needs}: run each after the items it needs.",
    )
    concurrency: Concurrency = Field(default=None, description="auto or N jobs at once.")
    order: Literal["declared", "alphabetical", "priority"] = Field(
        default="declared", description="Order in which the step's jobs start."
    )
    continue_on_error: bool = Field(
        default=False, description="A failure here does not fail the pipeline or its dependents."
    )
    if_: str | None = Field(
        default=None, alias="if", description="Run only when this expression is true."
    )
    events: Events = Field(
        default=None,
        description="Per-test results: test2json on stdout, or {format: junit, path: FILE}.",
    )
    cache: CacheSpec | None = Field(
        default=None, description="Skip a job whose key matches a stored success."
    )
    inputs: list[str] | None = Field(
        default=None,
        min_length=1,
        description=(
            "What each job is made from, as cache key entries ('files: GLOB', 'env: NAME', "
            "text): a rerun reuses a recorded success only when their digest is unchanged."
        ),
    )
    description: str = Field(default="", description="What the step does, for humans.")

    def upstream(self) -> list[str]:
        """Every step this one waits for, ``needs`` then ``needs_each``."""
        return upstream(self.needs, self.needs_each)


class PipelineSpec(StrictModel):
    """A named pipeline: its steps, in the order they are written."""

    description: str = Field(default="", description="What the pipeline does, for humans.")
    concurrency: Concurrency = Field(
        default="auto", description="Jobs at once over the whole pipeline (-j overrides)."
    )
    params: dict[Name, ParamSpec] = Field(
        default_factory=dict,
        description="Parameters (--set NAME=VALUE), read as ${{ params.NAME }}.",
    )
    steps: dict[Name, StepSpec] = Field(description="Steps by name.")

    @model_validator(mode="after")
    def _step_within_total(self) -> Self:
        """A step's ``concurrency: N`` over the pipeline's explicit total could
        never be reached: say so rather than cap it silently."""
        if isinstance(self.concurrency, int):
            for name, step in self.steps.items():
                if isinstance(step.concurrency, int) and step.concurrency > self.concurrency:
                    raise ValueError(
                        f"step {name!r} has concurrency {step.concurrency}, over the "
                        f"pipeline's {self.concurrency}: raise the pipeline's or lower the step's"
                    )
        return self


_TASK_SOURCES = ("task", "run", "command")
_EXPRESSION_KEYS = ("task", "run", "command", "input", "env", "for_each", "cache", "inputs")


def _strings(value: Any) -> list[tuple[Loc, str]]:
    """Every string inside ``value`` with its location below it."""
    if isinstance(value, str):
        return [((), value)]
    if isinstance(value, list):
        return [((i, *loc), s) for i, item in enumerate(value) for loc, s in _strings(item)]
    if isinstance(value, Mapping):
        return [((k, *loc), s) for k, item in value.items() for loc, s in _strings(item)]
    return []


def _upstream(steps: Mapping[str, Any], name: str) -> set[str]:
    """Steps reachable through needs/needs_each from ``name`` (not itself)."""
    seen: set[str] = set()
    stack = [name]
    while stack:
        step = steps.get(stack.pop())
        if not isinstance(step, Mapping):
            continue
        for key in ("needs", "needs_each"):
            refs = step.get(key)
            for ref in refs if isinstance(refs, list) else []:
                if isinstance(ref, str) and ref in steps and ref not in seen:
                    seen.add(ref)
                    stack.append(ref)
    return seen


def _cycle(steps: Mapping[str, Any]) -> list[str] | None:
    """One dependency cycle among ``steps``, as the names around it."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        step = steps.get(name)
        deps = []
        if isinstance(step, Mapping):
            for key in ("needs", "needs_each"):
                value = step.get(key)
                deps += [d for d in (value if isinstance(value, list) else []) if d in steps]
        for dep in deps:
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)) is not None:
                return found
        state[name] = 2
        path.pop()
        return None

    for name in steps:
        if name not in state and (found := visit(name)) is not None:
            return found
    return None


def _step_problems(
    where: Loc,
    name: str,
    step: Mapping[str, Any],
    steps: Mapping[str, Any],
    tasks: list[str],
    params: list[str],
) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    given = [key for key in _TASK_SOURCES if step.get(key) is not None]
    if not given:
        problems.append((where, "nothing to run: give task (a name or inline), run or command"))
    elif len(given) > 1:
        problems.append((where, f"give one of task, run or command, not {' and '.join(given)}"))
    task = step.get("task")
    if isinstance(task, str) and task not in tasks:
        problems.append(((*where, "task"), f"unknown task {task!r}{did_you_mean(task, tasks)}"))
    if isinstance(task, Mapping):
        problems += [((*where, "task", *loc), msg) for loc, msg in task_problems(task)]
    for key in ("needs", "needs_each"):
        refs = step.get(key)
        for index, ref in enumerate(refs if isinstance(refs, list) else []):
            if isinstance(ref, str) and ref not in steps:
                hint = did_you_mean(ref, steps)
                problems.append(((*where, key, index), f"unknown step {ref!r}{hint}"))
            elif ref == name:
                problems.append(((*where, key, index), f"step {name!r} needs itself"))
    problems += _expression_problems(where, name, step, steps, params)
    return problems


def _expression_problems(
    where: Loc, name: str, step: Mapping[str, Any], steps: Mapping[str, Any], params: list[str]
) -> list[tuple[Loc, str]]:
    from stockade.pipeline.expr import ExprError, step_refs, template_exprs

    upstream = _upstream(steps, name)
    problems: list[tuple[Loc, str]] = []
    fields = {k: step.get(k) for k in _EXPRESSION_KEYS}
    found = [((*where, key, *loc), text) for key, v in fields.items() for loc, text in _strings(v)]
    condition = step.get("if")
    if isinstance(condition, str):
        found.append(((*where, "if"), "${{ " + condition_text(condition) + " }}"))
    for loc, text in found:
        try:
            exprs = template_exprs(text)
        except ExprError as exc:
            problems.append((loc, f"bad expression: {exc}"))
            continue
        refs: set[str] = set()
        for expr in exprs:
            refs |= step_refs(expr)
            for param in sorted(step_refs(expr, "params") - set(params)):
                known = ", ".join(params) or "none"
                problems.append((loc, f"unknown param {param!r} (params: {known})"))
        for ref in sorted(refs):
            if ref not in steps:
                problems.append((loc, f"unknown step {ref!r}{did_you_mean(ref, steps)}"))
            elif ref not in upstream:
                problems.append(
                    (loc, f"reads steps.{ref} but {ref!r} is not in needs of step {name!r}")
                )
    return problems


def pipeline_problems(config: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Cross-key problems of every pipeline in raw config data."""
    pipelines = config.get("pipelines")
    tasks_raw = config.get("tasks")
    tasks = [str(t) for t in tasks_raw] if isinstance(tasks_raw, Mapping) else []
    problems: list[tuple[Loc, str]] = []
    if not isinstance(pipelines, Mapping):
        return problems
    for pname, pipeline in pipelines.items():
        steps = pipeline.get("steps") if isinstance(pipeline, Mapping) else None
        if not isinstance(steps, Mapping):
            continue
        declared = pipeline.get("params")
        params = [str(p) for p in declared] if isinstance(declared, Mapping) else []
        for name, step in steps.items():
            if isinstance(step, Mapping):
                where: Loc = ("pipelines", pname, "steps", name)
                problems += _step_problems(where, str(name), step, steps, tasks, params)
        cycle = _cycle(steps)
        if cycle is not None:
            problems.append(
                (
                    ("pipelines", pname, "steps", cycle[0]),
                    f"needs form a cycle: {' -> '.join(cycle)}",
                )
            )
    return problems
