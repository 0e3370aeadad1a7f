"""Tasks: named, reusable definitions of what to run and how.

:class:`TaskDefaults` holds every key a task shares with the file's
``defaults:`` section; :class:`TaskSpec` adds what only a task can say (what
to run, its description). By the time a :class:`TaskSpec` exists the defaults
are already merged in (see :func:`stockade.spec.checks.merge_defaults`), so
:meth:`TaskSpec.to_run_spec` converts it straight to the runner's plain
:class:`~stockade.runner.spec.RunSpec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from stockade.runner.spec import DEFAULT_KILL_GRACE, DEFAULT_MAX_OUTPUT, RunSpec
from stockade.runplan.logic import (
    DEFAULT_LOG_HEAD,
    DEFAULT_LOG_TAIL,
    hang_dumps,
    resolve_references,
    run_spec_of,
)
from stockade.spec.checks import DEFER_CHECKS_CONTEXT, task_problems
from stockade.spec.keys import Concurrency, Unique
from stockade.spec.notify import NotifySpec
from stockade.spec.routing import QueueName, Requires
from stockade.spec.types import (
    STORE_INT_MAX,
    STORE_INT_MIN,
    Duration,
    EnvMap,
    EnvName,
    ExitCode,
    Name,
    PositiveDuration,
    SignalName,
    Size,
    StrictModel,
    Text,
    workspace_path,
)
from stockade.spec.workspace import ArtifactLimits, WorkspaceSpec, artifact_glob

__all__ = [
    "DEFAULT_LOG_HEAD",
    "DEFAULT_LOG_TAIL",
    "Backoff",
    "ExitCodes",
    "InputFormat",
    "OnIdleTimeout",
    "OnTimeout",
    "OutputFormat",
    "TaskDefaults",
    "TaskSpec",
    "resolve_references",
]


#: The queue of a task that names none (the same as the store's).
DEFAULT_QUEUE = "default"

InputFormat = Literal["env", "json_stdin", "json_file", "args", "none"]
OutputFormat = Literal["stdout", "json_stdout", "lines", "exit_code_only", "file"]

_CLASSES = ("success", "retry", "failure")
_BUILTIN_CODES = {"success": [0], "retry": [75], "failure": []}


class ExitCodes(StrictModel):
    """Which exit codes mean success, retry and failure.

    Codes not listed anywhere count as failure. A default (``0`` success,
    ``75`` retry) gives way when the same code is listed explicitly in
    another class, so ``success: [0, 75]`` alone is valid; codes listed
    explicitly must be disjoint.
    """

    success: list[ExitCode] = Field(
        default_factory=lambda: [0], description="Codes that mean success (default [0])."
    )
    retry: list[ExitCode] = Field(
        default_factory=lambda: [75], description="Codes worth retrying (default [75])."
    )
    failure: list[ExitCode] = Field(
        default_factory=list, description="Codes that fail at once (any unlisted code does)."
    )

    @model_validator(mode="after")
    def _disjoint(self) -> ExitCodes:
        explicit = {name: getattr(self, name) for name in _CLASSES if name in self.model_fields_set}
        for name in _CLASSES:
            if name not in explicit:
                taken = {code for codes in explicit.values() for code in codes}
                setattr(self, name, [c for c in _BUILTIN_CODES[name] if c not in taken])
        for i, first in enumerate(_CLASSES):
            for second in _CLASSES[i + 1 :]:
                both = sorted(set(getattr(self, first)) & set(getattr(self, second)))
                if both:
                    raise ValueError(
                        f"exit code {both[0]} is in both {first} and {second}; "
                        "each code belongs to one class"
                    )
        return self


class Backoff(StrictModel):
    """Delay before retry *n*: ``initial * multiplier**(n-1)``, at most ``max``."""

    initial: Duration = Field(default=1.0, description="Delay before the first retry.")
    multiplier: float = Field(default=2.0, ge=1.0, description="Growth factor per retry.")
    max: Duration = Field(default=300.0, description="Longest delay.")

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.max < self.initial:
            raise ValueError("backoff max is shorter than initial")
        return self

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (counting from 1), without
        jitter: :func:`stockade.runner.policy.backoff_delay`, as stored jobs use."""
        from stockade.runner.policy import backoff_delay

        return backoff_delay(
            max(retry, 1), initial=self.initial, multiplier=self.multiplier, cap=self.max, jitter=0
        )


class OnIdleTimeout(StrictModel):
    """What happens when an idle timeout fires, before the job is stopped."""

    dump: SignalName = Field(
        description="Signal sent first so the job prints where it hangs: SIGQUIT for Go "
        "and the JVM, SIGABRT for Python (stockade sets PYTHONFAULTHANDLER).",
    )
    dump_wait: PositiveDuration = Field(
        default=5.0, description="How long the job gets to print its dump before the stop signal."
    )


class OnTimeout(OnIdleTimeout):
    """What happens when the timeout fires: a dump first, then retry or fail."""

    dump: SignalName | None = Field(  # type: ignore[assignment]
        default=None, description="Signal sent first so the job prints where it hangs."
    )
    action: Literal["retry", "fail"] = Field(
        default="fail", description="Whether a timed-out attempt is retried."
    )


_TimeoutInput = Literal["retry", "fail"] | OnTimeout


def _timeout_action(value: object) -> object:
    """``on_timeout: retry`` is short for ``on_timeout: {action: retry}``."""
    return {"action": value} if isinstance(value, str) else value


class TaskDefaults(StrictModel):
    """Every task key that may also be given under ``defaults:``."""

    input_format: InputFormat = Field(default="env", description="How the input reaches the job.")
    output_format: OutputFormat = Field(default="stdout", description="How outputs are read.")
    output_path: str | None = Field(
        default=None,
        description="For output_format file: the JSON file, relative to the workspace.",
    )
    env: EnvMap = Field(default_factory=dict, description="Extra environment variables.")
    secrets: list[EnvName] = Field(
        default_factory=list, description="Secrets (by name) given as environment variables."
    )
    workdir: str | None = Field(default=None, description="Working directory of the job.")
    timeout: PositiveDuration | None = Field(default=None, description="Time limit per attempt.")
    idle_timeout: PositiveDuration | None = Field(
        default=None, description="Stop the job after this long without output."
    )
    kill_grace: Duration = Field(
        default=DEFAULT_KILL_GRACE, description="Wait after stop_signal before SIGKILL."
    )
    stop_signal: SignalName = Field(default="SIGTERM", description="Signal sent to stop the job.")
    max_output: Size = Field(
        default=DEFAULT_MAX_OUTPUT,
        description="Bytes of each stream kept for outputs and exec's log file.",
    )
    log_head: Size = Field(
        default=DEFAULT_LOG_HEAD,
        description="Bytes of an attempt's first output (both streams) kept in the store's log.",
    )
    log_tail: Size = Field(
        default=DEFAULT_LOG_TAIL,
        description="Bytes of an attempt's last output (both streams) kept in the store's log.",
    )
    exit_codes: ExitCodes = Field(default_factory=ExitCodes, description="Exit-code classes.")
    max_attempts: int = Field(
        default=3, ge=1, le=STORE_INT_MAX, description="Attempts in total, retries included."
    )
    backoff: Backoff = Field(default_factory=Backoff, description="Delay between attempts.")
    on_timeout: Annotated[
        OnTimeout, BeforeValidator(_timeout_action, json_schema_input_type=_TimeoutInput)
    ] = Field(
        default_factory=OnTimeout,
        description="Whether a timed-out attempt is retried (retry, fail), or a mapping "
        "with action, dump and dump_wait.",
    )
    on_idle_timeout: OnIdleTimeout | None = Field(
        default=None, description="A dump signal (and dump_wait) sent when the idle timeout fires."
    )
    sandbox: Name | None = Field(
        default=None, description="Sandbox profile or backend; unset: the worker's default."
    )
    priority: int = Field(
        default=0, ge=STORE_INT_MIN, le=STORE_INT_MAX,
        description="Higher runs first among queued jobs.",
    )  # fmt: skip
    queue: QueueName = Field(
        default=DEFAULT_QUEUE, description="The queue its jobs wait in (workers serve queues)."
    )
    requires: Requires = Field(
        default_factory=Requires, description="What a worker must offer to claim its jobs."
    )

    secret_inputs: list[Text] = Field(
        default_factory=list,
        description="Input fields that hold secrets (besides those named like one): "
        "masked wherever the job is shown, and in its output.",
    )
    workspace: WorkspaceSpec | None = Field(
        default=None,
        description="A fresh workspace per attempt: empty, {template: DIR} or "
        "{git: {repo, ref}}, with keep and ttl; unset: the job runs where it is started.",
    )
    artifacts: list[Text] = Field(
        default_factory=list,
        description="Globs (relative to the workspace) of files kept after the job ends.",
    )
    artifact_limits: ArtifactLimits = Field(
        default_factory=ArtifactLimits, description="Size limits of the artifacts kept."
    )

    @field_validator("artifacts")
    @classmethod
    def _artifacts(cls, value: list[str]) -> list[str]:
        return [artifact_glob(glob) for glob in value]

    @property
    def timeout_action(self) -> str:
        """``retry`` or ``fail``: whether a timed-out attempt is retried."""
        return self.on_timeout.action

    def dumps(self) -> dict[str, tuple[int, float]]:
        """The runner's :attr:`~stockade.runner.spec.RunSpec.dumps` of these settings."""
        return hang_dumps(self.model_dump(mode="json", include={"on_timeout", "on_idle_timeout"}))

    @field_validator("output_path")
    @classmethod
    def _inside_workspace(cls, value: str | None) -> str | None:
        return None if value is None else workspace_path(value, "output_path")

    @field_validator("secrets")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for name in value:
            if name in seen:
                raise ValueError(f"secret {name!r} is listed twice")
            seen.add(name)
        return value

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("workdir is empty: give a directory or leave it out")
        return value


class TaskSpec(TaskDefaults):
    """One task: what to run (``run`` or ``command``) plus every default key."""

    run: str | None = Field(default=None, description="A shell line, run with /bin/sh -c.")
    command: list[Text] | None = Field(
        default=None, description="An argv list, run directly without a shell."
    )
    description: str = Field(default="", description="What the task does, for humans.")
    concurrency: Concurrency | None = Field(
        default=None,
        description="At most limit jobs with the same key (over the input) run at once.",
    )
    unique: Unique | None = Field(
        default=None, description="A submit whose key matches a live job returns that job."
    )
    notify: list[NotifySpec] = Field(
        default_factory=list,
        description="Webhooks or commands told when a job of this task ends (besides the "
        "file's own notify).",
    )

    @field_validator("run")
    @classmethod
    def _run(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("run is empty: give a shell line")
        return value

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("command is empty: give the program and its arguments")
        return value

    @model_validator(mode="after")
    def _shape(self, info: ValidationInfo) -> TaskSpec:
        context = info.context if isinstance(info.context, dict) else {}
        if context.get(DEFER_CHECKS_CONTEXT):
            return self
        problems = task_problems(
            self.model_dump(include={"run", "command", "output_format", "output_path"})
        )
        if problems:
            raise ValueError("; ".join(message for _, message in problems))
        return self

    def to_run_spec(
        self,
        name: str,
        *,
        secrets: Mapping[str, str],
        data_dir: str | Path | None = None,
    ) -> RunSpec:
        """The runner's plain spec for one attempt of this task.

        ``secrets`` maps secret names to values already resolved (see
        :meth:`stockade.spec.Config.resolve_secrets`); only the ones this
        task lists are passed on. Signal names become numbers and exit-code
        lists become tuples.
        """
        return run_spec_of(self.model_dump(mode="json"), name, secrets=secrets, data_dir=data_dir)
