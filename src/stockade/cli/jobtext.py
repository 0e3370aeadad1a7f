"""What a job runs, in a few words: for ``stockade jobs`` and ``show``.

A job of a named task is its task's name; an ad-hoc job (``stockade submit
-- CMD`` or ``--shell LINE``, task ``exec``) is its command line or shell
text, shortened, so that a list of them says which is which.
"""

from __future__ import annotations

import shlex
from typing import Any

__all__ = ["ADHOC_TASK", "command_text", "shorten", "task_label", "workdir_of"]

#: The task name of ad-hoc jobs.
ADHOC_TASK = "exec"


def _task(spec: Any) -> dict[str, Any]:
    task = spec.get("task") if isinstance(spec, dict) else None
    return task if isinstance(task, dict) else {}


def command_text(spec: Any) -> str | None:
    """The command line (quoted as a shell would need) or shell text a
    job's frozen ``spec`` runs; ``None`` when it names neither."""
    task = _task(spec)
    command, run = task.get("command"), task.get("run")
    if isinstance(command, list) and command:
        return shlex.join(str(arg) for arg in command)
    return run if isinstance(run, str) else None


def workdir_of(spec: Any) -> str | None:
    """The working directory a job's frozen ``spec`` runs in, if it names one."""
    workdir = _task(spec).get("workdir")
    return workdir if isinstance(workdir, str) else None


def shorten(text: str, width: int = 48) -> str:
    """``text`` on one line, at most ``width`` characters (``…`` where cut)."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def task_label(task: str, spec: Any, width: int = 48) -> str:
    """The TASK column of a job: ``exec: make -j4`` for an ad-hoc one."""
    if task != ADHOC_TASK:
        return task
    text = command_text(spec)
    return task if text is None else f"{task}: {shorten(text, width)}"
