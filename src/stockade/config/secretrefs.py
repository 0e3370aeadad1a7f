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
    """Whether ``path`` is a task's run, command item or env value, or a defaults' env value."""
    if len(path) >= 3 and path[0] == "tasks":
        field = path[2]
        return (len(path) == 3 and field == "run") or (
            len(path) == 4 and field in ("command", "env")
        )
    return len(path) == 3 and path[0] == "defaults" and path[1] == "env"


def keeper(path: Loc, defined: Collection[str]) -> Callable[[str], bool] | None:
    """Which names stay references at ``path``; ``None`` where every name is expanded."""
    if not _holds_references(path):
        return None
    return lambda name: is_secret_name(name) or name in defined


def declare(data: dict[str, Any], references: dict[Loc, list[str]]) -> None:
    """Make every name kept at a path a secret of the task it belongs to
    (of the defaults and of every task with its own list, for the defaults'
    env), defined as ``env: NAME`` if ``secrets:`` does not define it."""
    tasks = data.get("tasks") if isinstance(data.get("tasks"), dict) else {}
    assert isinstance(tasks, dict)
    defined = data.get("secrets")
    # The tasks' own first: a task that gets a list of its own gets the defaults' names too.
    for path, names in sorted(references.items(), key=lambda item: item[0][0] != "tasks"):
        if path[0] == "tasks":
            owners = [tasks.get(path[1])]
        else:
            defaults = data.get("defaults")
            owners = [
                defaults,
                *(t for t in tasks.values() if isinstance(t, dict) and "secrets" in t),
            ]
        for owner in owners:
            if not isinstance(owner, dict):
                continue
            listed = owner.setdefault("secrets", [])
            if isinstance(listed, list):
                listed.extend(name for name in dict.fromkeys(names) if name not in listed)
        if defined is None:
            defined = data["secrets"] = {}
        if isinstance(defined, dict):
            for name in names:
                defined.setdefault(name, {"env": name})
