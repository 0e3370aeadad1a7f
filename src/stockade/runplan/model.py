"""The plain classes a pipeline run is executed from, built from plan data.

A :class:`RunPlan` is made from the JSON data of
:func:`stockade.runplan.compile.compile_config` (fresh, or read back from
the cache): the pipelines with their steps, each step's task already merged
with ``defaults``, the sandbox profiles, the secrets' sources and the
file's ``notify``. The scheduler, planner, job runner and recorder use
these on every run, so a cached plan and a fresh one run the same code.
Building them checks the data's shape: a :class:`PlanFormatError` means
the data is not a plan (the cache then compiles again).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stockade.errors import SandboxError
from stockade.runner.spec import RunSpec
from stockade.runplan import logic

if TYPE_CHECKING:
    from stockade.spec import SandboxProfile, TaskSpec

__all__ = [
    "FORMAT",
    "PlainCache",
    "PlainEvents",
    "PlainParam",
    "PlainPipeline",
    "PlainSecret",
    "PlainStep",
    "PlainTask",
    "PlanFormatError",
    "RunPlan",
]

#: The version of the plan data's layout; a plan of another version is not read.
FORMAT = 1


class PlanFormatError(ValueError):
    """Data that is not a run plan of :data:`FORMAT` (a missing key, a wrong type)."""


class PlainTask:
    """A task as it runs: its JSON form (every key, ``defaults`` merged in)."""

    __slots__ = ("data", "notify")

    def __init__(self, data: dict[str, Any], notify: list[dict[str, Any]]) -> None:
        self.data = data
        #: The task's own ``notify`` entries, as a job's spec stores them.
        self.notify = notify

    @property
    def run(self) -> str | None:
        value: str | None = self.data["run"]
        return value

    @property
    def command(self) -> list[str] | None:
        value: list[str] | None = self.data["command"]
        return value

    @property
    def env(self) -> dict[str, str]:
        value: dict[str, str] = self.data["env"]
        return value

    @property
    def workdir(self) -> str | None:
        value: str | None = self.data["workdir"]
        return value

    @property
    def secrets(self) -> list[str]:
        value: list[str] = self.data["secrets"]
        return value

    @property
    def sandbox(self) -> str | None:
        value: str | None = self.data["sandbox"]
        return value

    @property
    def priority(self) -> int:
        return int(self.data["priority"])

    @property
    def max_attempts(self) -> int:
        return int(self.data["max_attempts"])

    @property
    def timeout_action(self) -> str:
        """``retry`` or ``fail``: whether a timed-out attempt is retried."""
        return str(self.data["on_timeout"]["action"])

    def retry_delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (from 1), without jitter, as
        :meth:`stockade.spec.task.Backoff.delay`."""
        from stockade.runner.policy import backoff_delay

        backoff = self.data["backoff"]
        return backoff_delay(
            max(retry, 1), initial=backoff["initial"], multiplier=backoff["multiplier"],
            cap=backoff["max"], jitter=0,
        )  # fmt: skip

    def replace(self, **changes: Any) -> PlainTask:
        """A copy with ``changes`` (JSON values) over these keys."""
        return PlainTask({**self.data, **changes}, self.notify)

    def dump(self, exclude: Iterable[str] = ()) -> dict[str, Any]:
        """The task's JSON form without the keys in ``exclude`` (a copy)."""
        left = set(exclude)
        copy: dict[str, Any] = json.loads(json.dumps(self.data))
        return {key: value for key, value in copy.items() if key not in left}

    def to_run_spec(
        self, name: str, *, secrets: Mapping[str, str], data_dir: str | Path | None = None
    ) -> RunSpec:
        """The runner's spec for one attempt (:func:`~stockade.runplan.logic.run_spec_of`)."""
        return logic.run_spec_of(self.data, name, secrets=secrets, data_dir=data_dir)

    def model(self) -> TaskSpec:
        """The task as the pydantic model (for what still takes one: ``--fleet``)."""
        from stockade.spec import TaskSpec

        return TaskSpec.model_validate(self.data)


class PlainEvents:
    """A step's ``events:``: ``test2json`` on stdout, or a ``junit`` report at ``path``."""

    __slots__ = ("format", "path")

    def __init__(self, format: str, path: str | None) -> None:
        self.format = format
        self.path = path


class PlainCache:
    """A step's ``cache:``: the entries of its key."""

    __slots__ = ("key",)

    def __init__(self, key: list[str]) -> None:
        self.key = key


class PlainParam:
    """A pipeline parameter: its type and default."""

    __slots__ = ("default", "type")

    def __init__(self, type: str, default: str | int | bool | None) -> None:
        self.type = type
        self.default = default

    def convert(self, value: str | int | bool) -> str | int | bool:
        """``value`` as this parameter's type; ValueError saying what is expected."""
        return logic.convert_param(self.type, value)


class PlainStep:
    """One step of a pipeline, with the task its jobs run (before ``${{ }}``)."""

    __slots__ = (
        "cache", "concurrency", "continue_on_error", "description", "env", "events", "for_each",
        "graph", "if_", "input", "inputs", "needs", "needs_each", "order", "task", "task_name",
    )  # fmt: skip

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.task_name: str = _str(data["task_name"])
        task = data["task"]
        self.task = PlainTask(_dict(task["data"]), _list(task["notify"]))
        self.input: Any = data["input"]
        self.env: dict[str, str] = _dict(data["env"])
        self.needs: list[str] = _list(data["needs"])
        self.needs_each: list[str] = _list(data["needs_each"])
        self.for_each: list[Any] | str | None = data["for_each"]
        self.graph = bool(data["graph"])
        self.concurrency: int | str | None = data["concurrency"]
        self.order: str = _str(data["order"])
        self.continue_on_error = bool(data["continue_on_error"])
        self.if_: str | None = data["if_"]
        events = data["events"]
        self.events = None if events is None else PlainEvents(events["format"], events["path"])
        cache = data["cache"]
        self.cache = None if cache is None else PlainCache(_list(cache["key"]))
        self.inputs: list[str] | None = data["inputs"]
        self.description: str = _str(data["description"])

    def upstream(self) -> list[str]:
        """Every step this one waits for, ``needs`` then ``needs_each``."""
        return logic.upstream(self.needs, self.needs_each)


class PlainPipeline:
    """A pipeline: its steps in the order written, concurrency and params."""

    __slots__ = ("concurrency", "description", "params", "steps")

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.description: str = _str(data["description"])
        self.concurrency: int | str | None = data["concurrency"]
        self.params = {
            name: PlainParam(param["type"], param["default"])
            for name, param in _dict(data["params"]).items()
        }
        self.steps = {name: PlainStep(step) for name, step in _dict(data["steps"]).items()}


class PlainSecret:
    """Where a secret's value comes from (never the value)."""

    __slots__ = ("source",)

    def __init__(self, source: dict[str, Any]) -> None:
        #: ``{"env": VAR}`` or ``{"file": PATH}``, as a job's spec stores it.
        self.source = source

    def read(self, name: str) -> str:
        """The value, read now (:func:`~stockade.runplan.logic.read_secret`)."""
        return logic.read_secret(name, self.source.get("env"), self.source.get("file"))


class RunPlan:
    """What a run needs of a config: pipelines, sandboxes, secrets, notify."""

    __slots__ = ("notify", "pipelines", "sandboxes", "secrets")

    def __init__(self, data: Mapping[str, Any]) -> None:
        try:
            if data["format"] != FORMAT:
                raise PlanFormatError(f"plan format {data['format']!r}, not {FORMAT}")
            self.pipelines = {
                name: PlainPipeline(spec) for name, spec in _dict(data["pipelines"]).items()
            }
            self.sandboxes: dict[str, dict[str, Any]] = _dict(data["sandboxes"])
            self.secrets = {
                name: PlainSecret(_dict(source)) for name, source in _dict(data["secrets"]).items()
            }
            self.notify: list[dict[str, Any]] = _list(data["notify"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise PlanFormatError(f"not a run plan: {type(exc).__name__}: {exc}") from None

    def pipeline(self, name: str | None) -> tuple[str, PlainPipeline]:
        """The pipeline ``name`` (the first when ``None``), as ``Config.pipeline``."""
        return logic.pick_pipeline(self.pipelines, name)

    def resolve_secrets(self, names: Iterable[str]) -> dict[str, str]:
        """Read the named secrets now, as ``Config.resolve_secrets``."""
        return logic.resolve_secrets(self.secrets, names)

    def secret_source(self, name: str) -> dict[str, Any]:
        """Where secret ``name`` comes from, as a job's spec stores it."""
        secret = self.secrets.get(name)
        return dict(secret.source) if secret is not None else {"env": name}

    def sandbox_data(self, name: str | None) -> dict[str, Any] | None:
        """The JSON form of the profile ``sandbox: name`` means: a defined
        profile, else a backend's defaults (the name was checked when the
        config was validated); ``None`` for ``None``."""
        if name is None:
            return None
        return self.sandboxes.get(name, {"backend": name})

    def sandbox_profile(self, name: str | None) -> SandboxProfile | None:
        """:meth:`sandbox_data` as the model the sandboxes take (validated once
        per profile; only a task that names a sandbox gets here)."""
        data = self.sandbox_data(name)
        return None if data is None else _profile(json.dumps(data, sort_keys=True))


@functools.lru_cache(maxsize=32)
def _profile(text: str) -> SandboxProfile:
    """The profile of its JSON form; :class:`SandboxError` (the job fails)
    when it cannot be used here now, a bind source removed since the plan
    was compiled for instance."""
    from pydantic import ValidationError

    from stockade.spec.sandbox import SandboxProfile

    try:
        return SandboxProfile.model_validate(json.loads(text))
    except ValidationError as exc:
        problem = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise SandboxError(f"the sandbox profile cannot be used here: {problem}") from None


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value
