"""Behaviour the spec models and the plain plan share, without pydantic.

Each function here is the one implementation of a piece of what a task,
step, secret or parameter means at run time: the pydantic models of
:mod:`stockade.spec` call them on their own values, and the plain classes
of :mod:`stockade.runplan.model` on the compiled data.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from stockade.errors import SecretError, UsageError
from stockade.runner.spec import RunSpec

__all__ = [
    "DEFAULT_LOG_HEAD",
    "DEFAULT_LOG_TAIL",
    "condition_text",
    "convert_param",
    "hang_dumps",
    "pick_pipeline",
    "read_secret",
    "resolve_params",
    "resolve_references",
    "resolve_secrets",
    "run_spec_of",
    "signal_number",
    "upstream",
    "workspace_plan",
]

#: Bytes of an attempt's first and last output a worker keeps in the store's log.
DEFAULT_LOG_HEAD = 1024 * 1024
DEFAULT_LOG_TAIL = 1024 * 1024

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})

P = TypeVar("P")


def signal_number(name: str) -> int:
    """The number of a canonical signal name such as ``SIGTERM``."""
    return int(signal.Signals[name])


def resolve_references(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``${NAME}`` of a secret in ``values`` replaced by its value."""
    if "${" not in text:
        return text
    return _REFERENCE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def condition_text(condition: str) -> str:
    """An ``if:`` as a bare expression: ``${{ x }}`` and ``x`` mean the same."""
    text = condition.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    return text


def upstream(needs: Iterable[str], needs_each: Iterable[str]) -> list[str]:
    """Every step a step waits for, ``needs`` then ``needs_each``."""
    first = list(needs)
    return [*first, *(n for n in needs_each if n not in first)]


def workspace_plan(workspace: Mapping[str, Any]) -> dict[str, Any]:
    """The runner's plain form of a workspace (its JSON form as input)."""
    git = workspace.get("git")
    return {
        "template": workspace.get("template"),
        "repo": git["repo"] if git else None,
        "ref": git["ref"] if git else None,
        "keep": workspace["keep"],
        "ttl": workspace["ttl"],
    }


def hang_dumps(task: Mapping[str, Any]) -> dict[str, tuple[int, float]]:
    """The runner's :attr:`~stockade.runner.spec.RunSpec.dumps` of a task's
    ``on_timeout`` and ``on_idle_timeout`` (its JSON form as input)."""
    found: dict[str, tuple[int, float]] = {}
    for reason, key in (("timeout", "on_timeout"), ("idle_timeout", "on_idle_timeout")):
        hang = task.get(key)
        if hang is not None and hang.get("dump") is not None:
            found[reason] = (signal_number(hang["dump"]), hang["dump_wait"])
    return found


def run_spec_of(
    task: Mapping[str, Any],
    name: str,
    *,
    secrets: Mapping[str, str],
    data_dir: str | Path | None = None,
) -> RunSpec:
    """The runner's plain spec for one attempt of a task, from the task's
    JSON form (``TaskSpec.model_dump(mode="json")``, defaults merged).

    ``secrets`` maps secret names to values already resolved; only the ones
    the task lists are passed on. Signal names become numbers and exit-code
    lists become tuples.
    """
    listed: list[str] = task["secrets"]
    missing = [secret for secret in listed if secret not in secrets]
    if missing:
        raise SecretError(
            f"task {name}: secret {missing[0]} was not resolved; pass its value in secrets"
        )
    values = {secret: secrets[secret] for secret in listed}
    command, run, env = task["command"], task["run"], task["env"]
    if values:  # ${NAME} references to secrets (stockade.config.secretrefs)
        command = [resolve_references(a, values) for a in command] if command else command
        run = resolve_references(run, values) if run is not None else None
        env = {k: resolve_references(v, values) for k, v in env.items()}
    codes = task["exit_codes"]
    workspace = task.get("workspace")
    return RunSpec(
        argv=list(command) if command is not None else None,
        shell=run,
        task=name,
        input_format=task["input_format"],
        output_format=task["output_format"],
        output_path=task["output_path"],
        env=dict(env),
        secrets=values,
        secret_inputs=tuple(task["secret_inputs"]),
        workdir=task["workdir"],
        timeout=task["timeout"],
        idle_timeout=task["idle_timeout"],
        kill_grace=task["kill_grace"],
        stop_signal=signal_number(task["stop_signal"]),
        max_output=task["max_output"],
        success_codes=tuple(codes["success"]),
        retry_codes=tuple(codes["retry"]),
        failure_codes=tuple(codes["failure"]),
        data_dir=str(data_dir) if data_dir is not None else None,
        dumps=hang_dumps(task),
        workspace=workspace_plan(workspace) if workspace is not None else None,
        artifacts=tuple(task["artifacts"]),
        artifact_limits=dict(task["artifact_limits"]),
    )


def read_secret(name: str, env: str | None, file: str | None) -> str:
    """A secret's value, read now from its variable ``env`` or its ``file``;
    :class:`SecretError` naming what is missing.

    An empty value is an error too: masking an empty string is
    meaningless and an empty credential is almost always a mistake.
    """
    if env is not None:
        if env.startswith("STOCKADE_"):
            raise SecretError(
                f"secret {name}: {env} is stockade's own variable and never reaches a "
                "job; keep the value in another variable"
            )
        value = os.environ.get(env)
        if value is None:
            raise SecretError(f"secret {name}: environment variable {env} is not set")
        if not value:
            raise SecretError(f"secret {name}: environment variable {env} is empty")
        return value
    path = Path(file or "")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretError(f"secret {name}: file {path} does not exist") from None
    except OSError as exc:
        raise SecretError(f"secret {name}: cannot read file {path}: {exc.strerror}") from exc
    value = text.rstrip("\r\n")
    if not value:
        raise SecretError(f"secret {name}: file {path} is empty")
    return value


class _Readable(Protocol):
    def read(self, name: str) -> str: ...


def resolve_secrets(specs: Mapping[str, _Readable], names: Iterable[str]) -> dict[str, str]:
    """Read the named secrets from their sources now.

    Raises :class:`SecretError` with one line naming the secret and the
    variable or file that is missing; every missing secret is listed.
    """
    values: dict[str, str] = {}
    errors: list[str] = []
    for name in names:
        spec = specs.get(name)
        if spec is None:
            errors.append(f"secret {name} is not defined under secrets")
            continue
        try:
            values[name] = spec.read(name)
        except SecretError as exc:
            errors.append(exc.message)
    if errors:
        raise SecretError("; ".join(errors))
    return values


def pick_pipeline(pipelines: Mapping[str, P], name: str | None) -> tuple[str, P]:
    """The pipeline called ``name`` (the first one defined when ``None``)
    with its name; a :class:`UsageError` with a did-you-mean if there is none."""
    if name is None:
        if pipelines:
            return next(iter(pipelines.items()))
        raise UsageError("no pipelines defined: add one under pipelines: NAME: steps:")
    if name not in pipelines:
        from stockade.suggest import did_you_mean

        known = ", ".join(pipelines) or "none defined"
        hint = did_you_mean(name, pipelines)
        raise UsageError(f"unknown pipeline {name!r}{hint} (pipelines: {known})")
    return name, pipelines[name]


def convert_param(kind: str, value: str | int | bool) -> str | int | bool:
    """``value`` as a parameter of type ``kind``; ValueError saying what is expected."""
    if kind == "string":
        return value if isinstance(value, str) else str(value).lower()
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError(f"{value!r} is not a bool (true or false)")
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an int")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an int") from None


class _Param(Protocol):
    @property
    def default(self) -> str | int | bool | None: ...

    def convert(self, value: str | int | bool) -> str | int | bool: ...


def resolve_params(
    declared: Mapping[str, _Param], given: Iterable[str], pipeline: str
) -> dict[str, Any]:
    """Every declared parameter's value: ``given`` (``NAME=VALUE`` each) over
    the defaults. Raises ValueError with one line saying what to fix."""
    values: dict[str, Any] = {n: p.default for n, p in declared.items() if p.default is not None}
    for entry in given:
        name, sep, text = entry.partition("=")
        if not sep or not name:
            raise ValueError(f"--set {entry!r}: give NAME=VALUE")
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise ValueError(
                f"--set {name}: pipeline {pipeline!r} has no param {name!r} (params: {known})"
            )
        try:
            values[name] = declared[name].convert(text)
        except ValueError as exc:
            raise ValueError(f"--set {name}: {exc}") from None
    missing = [n for n in declared if n not in values]
    if missing:
        raise ValueError(f"pipeline {pipeline!r} needs --set {missing[0]}=VALUE (no default)")
    return values
