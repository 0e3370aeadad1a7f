"""Compile a validated config into run-plan data (plain JSON values).

The data holds what a run reads of ``stockade.yaml``: every pipeline with
its steps (each step's task merged with ``defaults`` here, once, rather
than per job), the sandbox profiles, the secrets' sources and the file's
``notify``, all in their JSON form. :class:`~stockade.runplan.model.RunPlan`
is built from it; :mod:`~stockade.runplan.cache` keeps it.
"""

from __future__ import annotations

from typing import Any

from stockade.runplan.model import FORMAT, RunPlan
from stockade.spec import Config, TaskSpec, merge_defaults
from stockade.spec.pipeline import PipelineSpec, StepSpec

__all__ = ["base_task", "compile_config", "compile_pipeline", "plan_of"]

#: Step keys that say what task it runs: compiled into its task.
_TASK_KEYS = {"task", "run", "command"}


def base_task(config: Config, name: str, step: StepSpec) -> tuple[str, TaskSpec]:
    """The name and task (``defaults`` merged) the step ``name`` runs."""
    if isinstance(step.task, str):
        return step.task, config.task(step.task)
    defaults = config.defaults.model_dump(exclude_unset=True)
    if isinstance(step.task, TaskSpec):
        fields = step.task.model_dump(exclude_unset=True)
    else:
        fields = {"run": step.run} if step.run is not None else {"command": step.command}
    return name, TaskSpec.model_validate(merge_defaults(defaults, fields))


def _task(task: TaskSpec) -> dict[str, Any]:
    notify = [note.model_dump(mode="json", exclude_none=True) for note in task.notify]
    return {"data": task.model_dump(mode="json"), "notify": notify}


def _step(config: Config, name: str, step: StepSpec) -> dict[str, Any]:
    task_name, task = base_task(config, name, step)
    data = step.model_dump(mode="json", exclude=_TASK_KEYS)
    return data | {"task_name": task_name, "task": _task(task)}


def compile_pipeline(config: Config, spec: PipelineSpec) -> dict[str, Any]:
    """One pipeline's plan data (its steps' tasks from ``config``)."""
    return {
        "description": spec.description,
        "concurrency": spec.concurrency,
        "params": {name: param.model_dump(mode="json") for name, param in spec.params.items()},
        "steps": {name: _step(config, name, step) for name, step in spec.steps.items()},
    }


def compile_config(config: Config) -> dict[str, Any]:
    """The plan data of every pipeline of ``config`` and what their jobs use."""
    return {
        "format": FORMAT,
        "pipelines": {
            name: compile_pipeline(config, spec) for name, spec in config.pipelines.items()
        },
        "sandboxes": {name: p.model_dump(mode="json") for name, p in config.sandboxes.items()},
        "secrets": {name: s.model_dump(exclude_none=True) for name, s in config.secrets.items()},
        "notify": [note.model_dump(mode="json", exclude_none=True) for note in config.notify],
    }


def plan_of(config: Config, name: str, spec: PipelineSpec) -> RunPlan:
    """A plan of ``config`` whose pipeline ``name`` is ``spec`` (for callers
    that hold the models: ``stockade rerun``, the server, tests)."""
    data = compile_config(config)
    data["pipelines"][name] = compile_pipeline(config, spec)
    return RunPlan(data)
