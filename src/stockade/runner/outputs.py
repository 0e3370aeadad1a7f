"""Output formats: how a finished job's outputs are read (docs/design.md, step 9).

The format gives the base (``stdout``, ``json_stdout``, ``lines``, ``file``,
``exit_code_only``); values from the ``$STOCKADE_OUTPUT`` file and
``set-output`` commands are merged over it, later ones winning.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from stockade.errors import OutputError
from stockade.runner.spec import RunSpec

__all__ = ["base_outputs", "resolve_in_workspace"]


def resolve_in_workspace(workspace: str, relative: str) -> Path:
    """``relative`` inside ``workspace``, refusing paths that escape it (also by symlink)."""
    root = Path(os.path.realpath(workspace))
    if os.path.isabs(relative):
        raise OutputError(f"output path {relative!r} must be relative to the workspace")
    target = Path(os.path.realpath(root / relative))
    if target != root and root not in target.parents:
        raise OutputError(f"output path {relative!r} escapes the workspace {str(root)!r}")
    return target


def base_outputs(
    spec: RunSpec, stdout: str, truncated: bool, succeeded: bool, workspace: str
) -> dict[str, Any]:
    """The outputs the task's output format defines, before merging commands."""
    fmt = spec.output_format
    if fmt == "stdout":
        return {"stdout": stdout}
    if fmt == "lines":
        return {"lines": [line for line in stdout.splitlines() if line.strip()]}
    if fmt == "exit_code_only":
        return {"success": succeeded}
    if fmt == "json_stdout":
        return _as_object(_parse_json(stdout, "stdout", truncated))
    assert spec.output_path is not None
    path = resolve_in_workspace(workspace, spec.output_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise OutputError(f"output file {spec.output_path!r} was not written by the job") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise OutputError(f"output file {spec.output_path!r} cannot be read: {exc}") from exc
    return _as_object(_parse_json(text, f"output file {spec.output_path!r}", False))


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
