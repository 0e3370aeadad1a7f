"""Helpers for the sandbox tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from stockade.runner.attempt import run
from stockade.runner.events import ListSink
from stockade.runner.result import Result
from stockade.runner.spec import RunSpec
from stockade.sandbox.base import Sandbox


def run_in(sandbox: Sandbox, line: str, workspace: Path, **spec: Any) -> tuple[Result, str, str]:
    """Run shell ``line`` in ``sandbox``; return the result, stdout and stderr."""
    sink = ListSink()
    spec.setdefault("inherit_env", False)
    result = asyncio.run(
        run(RunSpec(shell=line, workdir=str(workspace), **spec), sinks=[sink], sandbox=sandbox)
    )
    return result, sink.text("stdout"), sink.text("stderr")
