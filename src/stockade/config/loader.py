"""Load ``stockade.yaml``: read, substitute, validate, report every problem.

The steps are: build plain data from the YAML node tree (lines kept,
``${VAR}`` substituted), validate it with :class:`stockade.spec.Config`,
and run the cross-key checks (unknown secrets and sandboxes, what to run,
where output goes) on the raw data so that they are reported even next to
type errors. Every problem becomes one ``FILE:LINE: key.path: message``;
all of them are raised together in one :class:`ConfigValidationError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stockade.config.messages import describe_error
from stockade.config.problems import ConfigValidationError, Problem
from stockade.config.secretrefs import declare
from stockade.config.yamldoc import Document, MalformedYaml, build
from stockade.configfile import CONFIG_NAMES, find_config, read_config
from stockade.spec import Config, TaskDefaults, merge_defaults
from stockade.spec.checks import (
    DEFER_CHECKS_CONTEXT,
    Loc,
    did_you_mean,
    reference_problems,
    task_problems,
)
from stockade.spec.config import SOURCE_CONTEXT
from stockade.spec.pipeline import pipeline_problems
from stockade.spec.sandbox import BASE_DIR_CONTEXT

__all__ = ["CONFIG_NAMES", "find_config", "load", "loads"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def load(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    lookups: dict[str, bool] | None = None,
) -> Config:
    """Load and validate the config file at ``path``.

    ``env`` is the environment for ``${VAR}`` substitution (default: this
    process's). Raises :class:`ConfigValidationError` listing every
    problem, or :class:`ConfigError` when the file cannot be read.
    ``lookups`` gets the ``${VAR}`` names substitution looked up, true for
    those whose value went into the config.
    """
    file = Path(path)
    text = read_config(file)
    return loads(text, filename=str(file), base_dir=file.resolve().parent, env=env, lookups=lookups)


def loads(
    text: str,
    *,
    filename: str = "<string>",
    base_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    lookups: dict[str, bool] | None = None,
) -> Config:
    """Load and validate config text; ``filename`` is used in messages and
    ``base_dir`` resolves relative paths (bind sources, secret files)."""
    environ = os.environ if env is None else env
    try:
        doc = build(text, environ)
    except MalformedYaml as exc:
        problem = Problem(filename, exc.line, "", f"malformed YAML: {exc.reason}")
        raise ConfigValidationError([problem]) from None
    if lookups is not None:
        lookups.update(doc.lookups)
    if doc.data is None:
        raise ConfigValidationError(
            [Problem(filename, 1, "", "the file is empty: expected a mapping with tasks:")]
        )
    if not isinstance(doc.data, dict):
        raise ConfigValidationError(
            [Problem(filename, 1, "", "the top level must be a mapping (version:, tasks: ...)")]
        )
    data = {k: v for k, v in doc.data.items() if not k.startswith("x-")}
    declare(data, doc.references)
    context = {
        DEFER_CHECKS_CONTEXT: True,
        BASE_DIR_CONTEXT: str(base_dir or Path.cwd()),
        SOURCE_CONTEXT: None if filename.startswith("<") else filename,
    }
    found = [(loc, line, message) for loc, line, message in doc.problems]
    config: Config | None = None
    try:
        config = Config.model_validate(data, context=context)
    except ValidationError as exc:
        found += _pydantic_problems(exc, doc)
    found += [(loc, _line(doc, loc), message) for loc, message in _cross_checks(data)]
    if found or config is None:
        raise ConfigValidationError(_problems(filename, found))
    return config


def _cross_checks(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """The checks pydantic would skip while fields are invalid (see
    :mod:`stockade.spec.checks`), run on the raw data."""
    found = reference_problems(data) + pipeline_problems(data)
    defaults = data.get("defaults")
    usable = (
        {k: v for k, v in defaults.items() if k in TaskDefaults.model_fields}
        if isinstance(defaults, dict)
        else {}
    )
    tasks = data.get("tasks")
    found += _schedule_problems(data.get("schedules"), tasks if isinstance(tasks, dict) else {})
    if isinstance(tasks, dict):
        for name, task in tasks.items():
            if isinstance(task, dict):
                merged = merge_defaults(usable, task)
                found += [(("tasks", name, *loc), msg) for loc, msg in task_problems(merged)]
    return found


def _schedule_problems(schedules: Any, tasks: dict[str, Any]) -> list[tuple[Loc, str]]:
    """Schedules that name a task the file does not define."""
    if not isinstance(schedules, dict):
        return []
    return [
        (("schedules", name, "task"),
         f"runs unknown task {spec['task']!r}{did_you_mean(spec['task'], tasks)}")
        for name, spec in schedules.items()
        if isinstance(spec, dict) and isinstance(spec.get("task"), str)
        and spec["task"] not in tasks
    ]  # fmt: skip


def _pydantic_problems(exc: ValidationError, doc: Document) -> list[tuple[Loc, int, str]]:
    found: list[tuple[Loc, int, str]] = []
    for error in exc.errors():
        loc = _from_defaults(tuple(error["loc"]), doc)
        show = not any(loc[: len(p)] == p for p in doc.substituted)
        loc, message = describe_error(Config, {**error, "loc": loc}, show_input=show)
        if any(loc[: len(p)] == p for p in doc.failed):
            continue  # the substitution problem already says it
        found.append((loc, _line(doc, loc), message))
    return found


def _from_defaults(loc: Loc, doc: Document) -> Loc:
    """Point an error in a merged task key back at ``defaults`` when that
    is where the value was written (the task does not set it)."""
    if len(loc) < 3 or loc[0] != "tasks":
        return loc
    in_task = _known_depth(("tasks", loc[1]), loc[2:], doc)
    in_defaults = _known_depth(("defaults",), loc[2:], doc)
    return ("defaults", *loc[2:]) if in_defaults > in_task else loc


def _known_depth(prefix: Loc, rest: Loc, doc: Document) -> int:
    depth = 0
    while depth < len(rest) and (*prefix, *rest[: depth + 1]) in doc.lines:
        depth += 1
    return depth


def _line(doc: Document, loc: Loc) -> int:
    """The line of the deepest part of ``loc`` written in the file."""
    for end in range(len(loc), 0, -1):
        line = doc.lines.get(loc[:end])
        if line is not None:
            return line
    return 1


def render_path(loc: Loc) -> str:
    """``("tasks", "build", "secrets", 0)`` as ``tasks.build.secrets[0]``."""
    out = ""
    for step in loc:
        if isinstance(step, int):
            out += f"[{step}]"
        elif _IDENTIFIER.fullmatch(step):
            out += f".{step}" if out else step
        else:
            out += f"[{step!r}]"
    return out


def _problems(filename: str, found: list[tuple[Loc, int, str]]) -> list[Problem]:
    unique: dict[tuple[str, str], Problem] = {}
    for loc, line, message in found:
        path = render_path(loc)
        unique.setdefault((path, message), Problem(filename, line, path, message))
    return sorted(unique.values(), key=lambda p: (p.line or 0, p.path))
