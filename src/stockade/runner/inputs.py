"""Input formats: how a job's input reaches its process (docs/design.md, step 4).

``env`` (``INPUT_<KEY>`` variables), ``json_stdin`` (stdin closed after the
JSON), ``json_file`` (``INPUT_FILE``), ``args`` (positional arguments ordered
by field name) and ``none``. In shell mode, arguments become the shell's
positional parameters (``"$1"`` …): an input value is never pasted into the
shell line, so it can never become shell syntax.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockade.errors import InputError
from stockade.jsontext import is_text
from stockade.runner.spec import RunSpec

__all__ = ["Prepared", "check_input", "env_name", "prepare", "scalar_text"]

_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")


@dataclass
class Prepared:
    """What :func:`prepare` derived from the input."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes | None = None


def env_name(key: str) -> str:
    """``INPUT_<KEY>``: upper-cased, characters other than letters, digits
    and ``_`` replaced by ``_``."""
    return "INPUT_" + _NOT_NAME.sub("_", key).upper()


def scalar_text(value: Any) -> str:
    """A field value as text: strings as they are, ``true``/``false``,
    ``""`` for null, numbers, objects and lists as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _fields(spec: RunSpec, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(
            f"input format {spec.input_format} needs a JSON object, got {type(value).__name__}; "
            "use --input-format json_stdin or json_file for other JSON values"
        )
    return value


def _check_text(what: str, text: str) -> str:
    if "\0" in text:
        raise InputError(f"{what} contains a NUL byte, which a process cannot receive")
    if not is_text(text):
        raise InputError(f"{what} holds a lone UTF-16 surrogate, which a process cannot receive")
    return text


def check_input(input_format: str, value: Any) -> None:
    """Refuse (:class:`InputError`, one line) an input a job of ``input_format``
    could never be given: what :func:`prepare` would refuse when the job
    runs, checked when it is submitted instead."""
    if input_format not in ("env", "args") or value is None:
        return
    if not isinstance(value, dict):
        raise InputError(
            f"input format {input_format} needs a JSON object of fields, got "
            f"{type(value).__name__}: give --input '{{\"name\": ...}}'"
        )
    for key, item in value.items():
        _check_text(f"input field {key!r}", scalar_text(item))


def prepare(spec: RunSpec, value: Any, runtime_dir: Path) -> Prepared:
    """Turn ``value`` into argv, environment and stdin for ``spec``."""
    args: list[str] = []
    env: dict[str, str] = {}
    stdin: bytes | None = None
    fmt = spec.input_format
    if fmt == "env":
        for key, item in _fields(spec, value).items():
            env[env_name(key)] = _check_text(f"input field {key!r}", scalar_text(item))
    elif fmt == "args":
        fields = _fields(spec, value)
        args = [_check_text(f"input field {k!r}", scalar_text(fields[k])) for k in sorted(fields)]
    elif fmt == "json_stdin":
        stdin = json.dumps({} if value is None else value).encode()
    elif fmt == "json_file":
        path = runtime_dir / "input.json"
        path.write_text(json.dumps({} if value is None else value), encoding="utf-8")
        env["INPUT_FILE"] = str(path)
    if spec.shell is not None:
        argv = ["/bin/sh", "-c", _check_text("shell line", spec.shell), spec.task, *args]
    else:
        assert spec.argv is not None
        argv = [_check_text("command", a) for a in spec.argv] + args
    return Prepared(argv=argv, env=env, stdin=stdin)
