"""Checks that span several keys, written over plain mappings.

Pydantic runs a model's cross-field validator only once every field of that
model is valid, so a task with a bad ``timeout`` would hide the fact that it
also names an undefined secret. The loader wants *every* problem at once, so
these checks work on the raw (possibly invalid) data and never assume a
value has the right type. The models call the same functions on validated
data, so Python users constructing a :class:`~stockade.spec.Config`
directly get the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stockade.spec.sandbox import BACKENDS
from stockade.suggest import did_you_mean

__all__ = [
    "DEFER_CHECKS_CONTEXT",
    "MERGED_MAPPINGS",
    "Loc",
    "did_you_mean",
    "merge_defaults",
    "reference_problems",
    "task_problems",
]

Loc = tuple[str | int, ...]

DEFER_CHECKS_CONTEXT = "stockade_defer_checks"
"""Validation-context key: when true, the models skip the checks in this
module because the caller (the loader) runs them on the raw data itself."""

MERGED_MAPPINGS = frozenset({"env", "exit_codes", "backoff"})
"""Task keys whose mappings are merged key by key with ``defaults``; every
other key in a task replaces the default whole."""

BUILTIN_SANDBOXES = BACKENDS


def merge_defaults(defaults: Mapping[str, Any], task: Mapping[str, Any]) -> dict[str, Any]:
    """One task with ``defaults`` filled in.

    Keys the task sets win; ``env``, ``exit_codes`` and ``backoff`` are
    merged key by key so a task can add one variable without repeating the
    rest. Only keys in ``defaults`` that are valid default keys should be
    passed in; the caller filters them.
    """
    merged: dict[str, Any] = dict(defaults)
    for key, value in task.items():
        base = merged.get(key)
        if key in MERGED_MAPPINGS and isinstance(base, Mapping) and isinstance(value, Mapping):
            merged[key] = {**base, **value}
        else:
            merged[key] = value
    return merged


def task_problems(task: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Shape problems of one task (defaults already merged): what to run and
    where its output goes. Locations are relative to the task."""
    problems: list[tuple[Loc, str]] = []
    has_run = task.get("run") is not None
    has_command = task.get("command") is not None
    if has_run and has_command:
        problems.append(((), "give either run (a shell line) or command (an argv list), not both"))
    elif not has_run and not has_command:
        problems.append(((), "nothing to run: give run (a shell line) or command (an argv list)"))
    output_format = task.get("output_format")
    has_path = task.get("output_path") is not None
    if output_format == "file" and not has_path:
        problems.append(
            (
                ("output_format",),
                "output_format is file but output_path is not set: "
                "give the JSON file's path inside the workspace",
            )
        )
    elif has_path and output_format != "file":
        problems.append(
            (
                ("output_path",),
                "output_path is only used with output_format: file",
            )
        )
    return problems


def _names(value: Any) -> list[str]:
    return [str(key) for key in value] if isinstance(value, Mapping) else []


def _secret_refs(owner: Loc, section: Any, defined: list[str]) -> list[tuple[Loc, str]]:
    if not isinstance(section, Mapping):
        return []
    refs = section.get("secrets")
    if not isinstance(refs, list):
        return []
    problems: list[tuple[Loc, str]] = []
    for index, ref in enumerate(refs):
        if isinstance(ref, str) and ref not in defined:
            hint = did_you_mean(ref, defined)
            problems.append(
                (
                    (*owner, "secrets", index),
                    f"unknown secret {ref!r}{hint} (secrets are defined under the "
                    "top-level secrets: with env: VARIABLE or file: PATH)",
                )
            )
    return problems


def _sandbox_ref(owner: Loc, section: Any, profiles: list[str]) -> list[tuple[Loc, str]]:
    if not isinstance(section, Mapping):
        return []
    ref = section.get("sandbox")
    if not isinstance(ref, str) or ref in profiles or ref in BUILTIN_SANDBOXES:
        return []
    known = [*profiles, *BUILTIN_SANDBOXES]
    return [
        (
            (*owner, "sandbox"),
            f"unknown sandbox {ref!r}{did_you_mean(ref, known)} (use a profile defined "
            f"under sandboxes: or a backend: {', '.join(BUILTIN_SANDBOXES)})",
        )
    ]


def reference_problems(config: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Names that point nowhere: a task's (or the defaults') secrets that are
    not defined under ``secrets``, and sandboxes that are neither a profile
    under ``sandboxes`` nor a built-in backend. Works on unmerged data, so
    each bad reference is reported once, where it is written."""
    secrets = _names(config.get("secrets"))
    profiles = _names(config.get("sandboxes"))
    defaults = config.get("defaults")
    problems = _secret_refs(("defaults",), defaults, secrets)
    problems += _sandbox_ref(("defaults",), defaults, profiles)
    tasks = config.get("tasks")
    if isinstance(tasks, Mapping):
        for name, task in tasks.items():
            problems += _secret_refs(("tasks", name), task, secrets)
            problems += _sandbox_ref(("tasks", name), task, profiles)
    return problems
