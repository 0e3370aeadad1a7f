"""RunSpec: everything the runner needs for one attempt, as plain data.

This is deliberately a dataclass, not a pydantic model: the ad-hoc path
(``stockade exec -- CMD``) builds one directly and must not pay for importing
the config models. Tasks from ``stockade.yaml`` are validated by the pydantic
models in :mod:`stockade.spec` and converted with ``TaskSpec.to_run_spec()``.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_KILL_GRACE",
    "DEFAULT_MAX_OUTPUT",
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "RunSpec",
]

INPUT_FORMATS = ("env", "json_stdin", "json_file", "args", "none")
OUTPUT_FORMATS = ("stdout", "json_stdout", "lines", "file", "exit_code_only")
DEFAULT_MAX_OUTPUT = 1024 * 1024
DEFAULT_KILL_GRACE = 5.0


@dataclass
class RunSpec:
    """One attempt's definition.

    Exactly one of ``argv`` (run directly, no shell) and ``shell`` (a line
    given to ``/bin/sh -c``) is set. In shell mode input values never become
    shell syntax: they reach the line only as environment variables or as
    positional parameters (``"$1"``), never by text substitution.
    """

    argv: list[str] | None = None
    shell: str | None = None
    task: str = "exec"
    job_id: str | None = None
    attempt: int = 1
    input_format: str = "env"
    output_format: str = "stdout"
    output_path: str | None = None  # for output_format "file", relative to the workspace
    env: dict[str, str] = field(default_factory=dict)
    #: Start from stockade's environment (less its own ``STOCKADE_*``) rather
    #: than the allow-list; see :mod:`stockade.runner.hostenv`.
    inherit_env: bool = False
    secrets: dict[str, str] = field(default_factory=dict)
    #: Input fields whose values are masked like secrets (as well as those
    #: whose ``INPUT_`` variable is named like one).
    secret_inputs: tuple[str, ...] = ()
    workdir: str | None = None
    timeout: float | None = None
    idle_timeout: float | None = None
    kill_grace: float = DEFAULT_KILL_GRACE
    stop_signal: int = int(signal.SIGTERM)
    max_output: int = DEFAULT_MAX_OUTPUT
    success_codes: tuple[int, ...] = (0,)
    retry_codes: tuple[int, ...] = (75,)
    failure_codes: tuple[int, ...] = ()
    state: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    #: Reattach mode: the directory of the job's spool (its output and exit
    #: status, kept by the spool shim when the worker is gone; see
    #: :mod:`stockade.sandbox.spoolshim`); ``None``: the job's parent is the runner.
    spool_dir: str | None = None
    #: Before the stop ladder of a ``timeout`` or ``idle_timeout``: the signal
    #: sent so the job prints its stacks, and the seconds it gets to print them.
    dumps: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: A fresh workspace per attempt (:class:`stockade.runner.workspace.Plan`
    #: as a dict: template, repo, ref, keep, ttl); ``None``: run in ``workdir``.
    workspace: dict[str, Any] | None = None
    #: Globs of files kept after the job ends (:mod:`stockade.runner.artifacts`).
    artifacts: tuple[str, ...] = ()
    #: ``file``, ``total`` (bytes) and ``count`` limits of the artifacts.
    artifact_limits: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.argv is None) == (self.shell is None):
            raise ValueError("a RunSpec needs exactly one of argv or shell")
        if self.argv is not None and not self.argv:
            raise ValueError("argv is empty: give a command to run")
        if self.input_format not in INPUT_FORMATS:
            raise ValueError(
                f"unknown input format {self.input_format!r}; use one of {', '.join(INPUT_FORMATS)}"
            )
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(
                f"unknown output format {self.output_format!r}; "
                f"use one of {', '.join(OUTPUT_FORMATS)}"
            )
        if self.output_format == "file" and not self.output_path:
            raise ValueError("output format 'file' needs a path (file:PATH)")
