"""Output formats: how a finished job's outputs are read (docs/design.md, step 9).

The format gives the base (``stdout``, ``json_stdout``, ``lines``, ``file``,
``exit_code_only``); values from the ``$STOCKADE_OUTPUT`` file and
``set-output`` commands are merged over it, later ones winning.
"""

from __future__ import annotations

import json
from typing import Any

from stockade.errors import OutputError
from stockade.runner import jobfile
from stockade.runner.protocol import parse_output_file
from stockade.runner.spec import RunSpec

__all__ = ["base_outputs", "job_outputs", "read_output_file"]


def read_output_file(spec: RunSpec, workspace: str) -> str:
    """The text of the task's ``file:`` output, read beneath ``workspace`` as
    :mod:`~stockade.runner.jobfile` reads, at most ``max_output`` bytes.

    Blocking: a caller in an event loop runs it in a thread."""
    assert spec.output_path is not None
    shown = f"output file {spec.output_path!r}"
    data = jobfile.read(workspace, spec.output_path, limit=spec.max_output, shown=shown)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OutputError(f"{shown} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc


def base_outputs(
    spec: RunSpec, stdout: str, truncated: bool, succeeded: bool, file_text: str | None
) -> dict[str, Any]:
    """The outputs the task's output format defines, before merging commands;
    ``file_text`` is what :func:`read_output_file` read for the ``file`` format."""
    fmt = spec.output_format
    if fmt == "stdout":
        return {"stdout": stdout}
    if fmt == "lines":
        return {"lines": [line for line in stdout.splitlines() if line.strip()]}
    if fmt == "exit_code_only":
        return {"success": succeeded}
    if fmt == "json_stdout":
        return _as_object(_parse_json(stdout, "stdout", truncated))
    assert file_text is not None
    return _as_object(_parse_json(file_text, f"output file {spec.output_path!r}", False))


def job_outputs(
    spec: RunSpec,
    stdout: str,
    truncated: bool,
    succeeded: bool,
    file_text: str | None,
    env_text: str | None,
) -> dict[str, Any]:
    """The format's outputs with the ``$STOCKADE_OUTPUT`` file's
    (``env_text``) merged over them; ``set-output`` commands go on top.
    Raises :class:`OutputError` (or ``ValueError``) for output that cannot be read."""
    outputs = base_outputs(spec, stdout, truncated, succeeded, file_text)
    if env_text:
        outputs.update(parse_output_file(env_text))
    return outputs


def _parse_json(text: str, what: str, truncated: bool) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (it was truncated by the output limit; raise --max-output)" if truncated else ""
        raise OutputError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}{hint}"
        ) from exc


def _as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"value": value}
