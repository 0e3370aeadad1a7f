"""Human and machine descriptions of a config: ``stockade validate`` and
``stockade schema``.

The summary names every task, sandbox profile and secret so a reader can
check the file says what they meant; it names where each secret comes from
but never reads it, so it is safe to paste anywhere.
"""

from __future__ import annotations

from typing import Any

from stockade.spec import Config, TaskSpec
from stockade.units import format_duration

__all__ = ["json_schema", "summary"]

_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _task_line(name: str, task: TaskSpec) -> str:
    what = (
        f"run: {task.run}" if task.run is not None else f"command: {' '.join(task.command or [])}"
    )
    what = " ".join(what.split())
    if len(what) > 60:
        what = what[:57] + "..."
    facts = [f"input {task.input_format}", f"output {task.output_format}"]
    if task.timeout is not None:
        facts.append(f"timeout {format_duration(task.timeout)}")
    facts.append(f"attempts {task.max_attempts}")
    if task.sandbox is not None:
        facts.append(f"sandbox {task.sandbox}")
    if task.secrets:
        facts.append(f"secrets {', '.join(task.secrets)}")
    line = f"  {name}: {what}  [{'; '.join(facts)}]"
    return f"{line}\n    {task.description}" if task.description else line


def summary(config: Config) -> str:
    """A few lines describing ``config`` for a human: counts, then one line
    per task, sandbox profile and secret (with its source kind, not value)."""
    lines: list[str] = []
    if config.source is not None:
        lines.append(f"{config.source}: valid (version {config.version})")
    lines.append(f"{_plural(len(config.tasks), 'task')}")
    lines += [_task_line(name, task) for name, task in sorted(config.tasks.items())]
    lines.append(f"{_plural(len(config.sandboxes), 'sandbox profile')}")
    for name, profile in sorted(config.sandboxes.items()):
        network = profile.network or "backend default"
        lines.append(
            f"  {name}: backend {profile.backend}, {_plural(len(profile.mounts), 'mount')}, "
            f"network {network}"
        )
    lines.append(f"{_plural(len(config.secrets), 'secret')}")
    for name, secret in sorted(config.secrets.items()):
        lines.append(f"  {name}: from {secret.describe()}")
    if config.schedules:
        lines.append(f"{_plural(len(config.schedules), 'schedule')}")
        lines += [
            f"  {name}: {s.task} at {s.cron!r} {s.timezone}, catch_up {s.catch_up.value}"
            for name, s in sorted(config.schedules.items())
        ]
    return "\n".join(lines)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of ``stockade.yaml``, for editors and CI linting.

    Durations and sizes are described in both forms (number or text);
    top-level keys starting with ``x-`` are allowed, for YAML anchors.
    """
    schema = Config.model_json_schema(mode="validation")
    schema["title"] = "stockade.yaml"
    schema["$schema"] = _SCHEMA_DIALECT
    schema["patternProperties"] = {"^x-": {}}
    return {"$schema": schema.pop("$schema"), **schema}
