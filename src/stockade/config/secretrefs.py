"""Secrets referred to in a task stay references until an attempt starts.

``${NAME}`` in a task's ``run``, ``command`` or ``env`` (or in the
defaults' ``env``) is not expanded when ``NAME`` is a secret: named like
one (``*_TOKEN``, ``*_KEY`` …, see :func:`stockade.runner.redact.is_secret_name`)
or defined under the top-level ``secrets:``. The task lists ``NAME`` among
its secrets instead (sourced from the variable ``NAME`` unless ``secrets:``
defines it), so its value is read where and when the attempt starts and
substituted there (:func:`stockade.spec.task.resolve_references`): a job's
stored spec holds the reference, never the value.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from stockade.runner.redact import is_secret_name

__all__ = ["declare", "keeper"]

Loc = tuple[str | int, ...]


def _holds_references(path: Loc) -> bool:
    """Whether ``path`` is a run, command item or env value of a task, of the
    defaults, or of a pipeline step (shorthand or inline task)."""
    head, rest = path[:1], path[1:]
    if head == ("tasks",) and len(rest) >= 2:
        return _task_field(rest[1:])
    if head == ("defaults",):
        return len(rest) == 2 and rest[0] == "env"
    if head == ("pipelines",) and len(rest) >= 4 and rest[1] == "steps":
        step = rest[3:]
        return _task_field(step[1:]) if step[:1] == ("task",) else _task_field(step)
    return False


def _task_field(rest: Loc) -> bool:
    """``("run",)``, ``("command", i)`` or ``("env", key)``."""
    return rest == ("run",) or (len(rest) == 2 and rest[0] in ("command", "env"))


def keeper(path: Loc, defined: Collection[str]) -> Callable[[str], bool] | None:
    """Which names stay references at ``path``; ``None`` where every name is expanded."""
    if not _holds_references(path):
        return None
    return lambda name: is_secret_name(name) or name in defined


def declare(data: dict[str, Any], references: dict[Loc, list[str]]) -> None:
    """Make every name kept at a path a secret of the task it belongs to,
    defined as ``env: NAME`` if ``secrets:`` does not define it.

    A pipeline step's shorthand ``run``/``command`` becomes an inline task
    (which can list secrets); a step's ``env`` adds to its task's list (a
    named task's, if it uses one). The defaults' ``env`` adds to the
    defaults' list and to every task that has a list of its own.
    """
    tasks = data.get("tasks") if isinstance(data.get("tasks"), dict) else {}
    assert isinstance(tasks, dict)
    defined = data.get("secrets")
    if defined is None and references:
        defined = data["secrets"] = {}
    later: list[str] = []
    owners: list[dict[str, Any]] = []
    for path, names in references.items():
        if path[0] == "defaults":
            later += names
            continue
        owner = tasks.get(path[1]) if path[0] == "tasks" else _step_task(data, path, tasks)
        if isinstance(owner, dict):
            _add(owner, names)
            owners.append(owner)
        if isinstance(defined, dict):
            for name in names:
                defined.setdefault(name, {"env": name})
    if later:
        defaults = data.get("defaults")
        everyone = [*tasks.values(), *owners]
        for owner in [defaults, *(t for t in everyone if isinstance(t, dict) and "secrets" in t)]:
            if isinstance(owner, dict):
                _add(owner, later)
        if isinstance(defined, dict):
            for name in later:
                defined.setdefault(name, {"env": name})


def _add(owner: dict[str, Any], names: list[str]) -> None:
    listed = owner.setdefault("secrets", [])
    if isinstance(listed, list):
        listed.extend(name for name in dict.fromkeys(names) if name not in listed)


def _step_task(data: dict[str, Any], path: Loc, tasks: dict[str, Any]) -> Any:
    """The task a step's reference belongs to; a shorthand step gets an inline one."""
    try:
        step = data["pipelines"][path[1]]["steps"][path[3]]
    except (KeyError, TypeError, IndexError):
        return None
    if not isinstance(step, dict):
        return None
    task = step.get("task")
    if isinstance(task, str):
        return tasks.get(task)
    if task is None:
        shorthand = {key: step.pop(key) for key in ("run", "command") if key in step}
        if not shorthand:
            return None
        task = step["task"] = shorthand
    return task
