"""Helpers for runner tests: run a spec synchronously, inspect processes."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from stockade.runner.attempt import run
from stockade.runner.events import ListSink
from stockade.runner.result import Result
from stockade.runner.spec import RunSpec


def run_spec(spec: RunSpec, value: Any = None, **kw: Any) -> tuple[Result, ListSink]:
    sink = ListSink()
    result = asyncio.run(run(spec, value, sinks=[sink], **kw))
    return result, sink


def sh(line: str, **kw: Any) -> RunSpec:
    return RunSpec(shell=line, **kw)


def alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            data = fh.read()
    except OSError:
        return False
    return data[data.rfind(")") + 2] not in "ZX"


def exists(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def zombie_children() -> list[int]:
    out = []
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{tid}/children", encoding="ascii") as fh:
            for pid in fh.read().split():
                with open(f"/proc/{pid}/stat", encoding="ascii") as st:
                    data = st.read()
                if data[data.rfind(")") + 2] == "Z":
                    out.append(int(pid))
    return out
