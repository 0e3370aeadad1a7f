"""The whole ``stockade.yaml``: version, defaults, tasks, sandboxes, secrets.

:class:`Config` merges ``defaults`` into every task while validating, so
``config.tasks[name]`` is always the task as it will run. Lookups that
come from users (a task name on the command line) fail with a
did-you-mean instead of a ``KeyError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PrivateAttr, ValidationInfo, model_validator

from stockade.errors import UsageError
from stockade.runner.spec import RunSpec
from stockade.runplan.logic import pick_pipeline, resolve_secrets
from stockade.spec.checks import (
    DEFER_CHECKS_CONTEXT,
    did_you_mean,
    merge_defaults,
    reference_problems,
)
from stockade.spec.notify import NotifySpec
from stockade.spec.pipeline import PipelineSpec, pipeline_problems
from stockade.spec.sandbox import BACKENDS, SandboxProfile
from stockade.spec.schedule import RetentionSpec, ScheduleSpec
from stockade.spec.secrets import SecretSpec
from stockade.spec.server import ServerSpec, WebhookSpec
from stockade.spec.task import TaskDefaults, TaskSpec
from stockade.spec.types import EnvName, Name, StrictModel

__all__ = ["CURRENT_VERSION", "SOURCE_CONTEXT", "Config"]

CURRENT_VERSION = 1

SOURCE_CONTEXT = "stockade_source"
"""Validation-context key: the path of the file being validated."""


def _supported_version(value: int) -> int:
    if value != CURRENT_VERSION:
        raise ValueError(
            f"unsupported version {value}: this stockade reads version {CURRENT_VERSION}"
        )
    return value


def _plain(value: Any) -> Any:
    """A model given from Python as the keys it was given, so that defaults
    merge into ``Config(tasks={"a": TaskSpec(run="x")})`` as into YAML."""
    if isinstance(value, TaskDefaults):
        return value.model_dump(exclude_unset=True)
    return value


class Config(StrictModel):
    """A validated ``stockade.yaml``."""

    version: Annotated[int, AfterValidator(_supported_version)] = Field(
        default=CURRENT_VERSION, description="File format version; currently 1."
    )
    defaults: TaskDefaults = Field(
        default_factory=TaskDefaults, description="Task keys applied to every task."
    )
    tasks: dict[Name, TaskSpec] = Field(default_factory=dict, description="Tasks by name.")
    sandboxes: dict[Name, SandboxProfile] = Field(
        default_factory=dict, description="Sandbox profiles by name."
    )
    secrets: dict[EnvName, SecretSpec] = Field(
        default_factory=dict,
        description="Secrets by name (the variable the job sees), with their source.",
    )
    server: ServerSpec = Field(
        default_factory=ServerSpec, description="Settings of `stockade serve`."
    )
    webhooks: dict[Name, WebhookSpec] = Field(
        default_factory=dict, description="Webhooks by name: `POST /hooks/NAME` runs a task."
    )
    pipelines: dict[Name, PipelineSpec] = Field(
        default_factory=dict, description="Pipelines (graphs of steps) by name."
    )
    notify: list[NotifySpec] = Field(
        default_factory=list,
        description="Webhooks or commands told when any job ends (each task may add its own).",
    )
    schedules: dict[Name, ScheduleSpec] = Field(
        default_factory=dict, description="Tasks submitted on a cron schedule, by name."
    )
    retention: RetentionSpec = Field(
        default_factory=RetentionSpec,
        description="How long finished jobs are kept [forever]; workers and servers prune.",
    )

    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        """Fill every task dict in with the keys given under ``defaults``."""
        if not isinstance(data, dict):
            return data
        defaults, tasks = _plain(data.get("defaults")), data.get("tasks")
        if not isinstance(defaults, dict) or not isinstance(tasks, dict):
            return data
        usable = {k: v for k, v in defaults.items() if k in TaskDefaults.model_fields}
        merged = {}
        for name, task in tasks.items():
            plain = _plain(task)
            merged[name] = merge_defaults(usable, plain) if isinstance(plain, dict) else task
        return {**data, "tasks": merged}

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> Config:
        context = info.context if isinstance(info.context, dict) else {}
        source = context.get(SOURCE_CONTEXT)
        self._source = Path(source) if source else None
        if context.get(DEFER_CHECKS_CONTEXT):
            return self
        problems = reference_problems(
            self.model_dump(include={"defaults", "tasks"})
            | {
                "secrets": dict.fromkeys(self.secrets),
                "sandboxes": dict.fromkeys(self.sandboxes),
            }
        )
        messages = [message for _, message in problems]
        pipelines = self.model_dump(include={"tasks", "pipelines"}, by_alias=True)
        messages += [message for _, message in pipeline_problems(pipelines)]
        messages += [
            f"webhook {hook!r} runs unknown task {spec.task!r}{did_you_mean(spec.task, self.tasks)}"
            for hook, spec in self.webhooks.items()
            if spec.task not in self.tasks
        ]
        messages += [
            f"schedule {name!r} runs unknown task {spec.task!r}"
            f"{did_you_mean(spec.task, self.tasks)}"
            for name, spec in self.schedules.items()
            if spec.task not in self.tasks
        ]
        if messages:
            raise ValueError("; ".join(messages))
        return self

    @property
    def source(self) -> Path | None:
        """The file this configuration was loaded from, if any."""
        return self._source

    def task(self, name: str) -> TaskSpec:
        """The task called ``name``; a :class:`UsageError` with a did-you-mean
        and the list of tasks if there is none."""
        try:
            return self.tasks[name]
        except KeyError:
            known = ", ".join(sorted(self.tasks)) or "none defined"
            raise UsageError(
                f"unknown task {name!r}{did_you_mean(name, self.tasks)} (tasks: {known})"
            ) from None

    def pipeline(self, name: str | None) -> tuple[str, PipelineSpec]:
        """The pipeline called ``name`` (the first one defined when ``None``)
        with its name; a :class:`UsageError` with a did-you-mean if there is none."""
        return pick_pipeline(self.pipelines, name)

    def sandbox_profile(self, name: str | None) -> SandboxProfile | None:
        """The profile a task's ``sandbox:`` names.

        A defined profile wins; a built-in backend name without a profile
        gives that backend with default settings; ``None`` stays ``None``
        (the worker's default).
        """
        if name is None:
            return None
        if name in self.sandboxes:
            return self.sandboxes[name]
        if name in BACKENDS:
            return SandboxProfile.model_validate({"backend": name})
        known = [*self.sandboxes, *(b for b in BACKENDS if b not in self.sandboxes)]
        raise UsageError(
            f"unknown sandbox {name!r}{did_you_mean(name, known)} "
            f"(profiles and backends: {', '.join(known)})"
        )

    def resolve_secrets(self, names: Iterable[str]) -> dict[str, str]:
        """Read the named secrets from their sources now.

        Raises :class:`SecretError` with one line naming the secret and the
        variable or file that is missing; every missing secret is listed.
        """
        return resolve_secrets(self.secrets, names)

    def run_spec(self, task: str, *, data_dir: str | Path | None = None) -> RunSpec:
        """The runner spec for ``task``, with its secrets read now."""
        spec = self.task(task)
        return spec.to_run_spec(task, secrets=self.resolve_secrets(spec.secrets), data_dir=data_dir)
