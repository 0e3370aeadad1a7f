"""Helpers for pipeline tests: a config from YAML text, run to the end."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stockade.config import loads
from stockade.pipeline.model import Job, RunState, Status
from stockade.pipeline.scheduler import Scheduler
from stockade.spec import Config


def config(text: str) -> Config:
    return loads(textwrap.dedent(text), env={})


class Recorder:
    """Keeps every event as ``(kind, job name, data)``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str | None, dict[str, Any]]] = []

    def event(self, kind: str, run: RunState, job: Job | None, data: dict[str, Any]) -> None:
        self.events.append((kind, job.name if job else None, data))

    def started(self) -> list[str]:
        return [name for kind, name, _ in self.events if kind == "job_start" and name]


def run(
    text: str,
    pipeline: str | None = None,
    *,
    jobs: int | None = None,
    keep_going: bool = False,
    only: Sequence[str] = (),
    during: Callable[[Scheduler], Any] | None = None,
    recorder: Recorder | None = None,
) -> RunState:
    cfg = config(text)
    name, spec = cfg.pipeline(pipeline)

    async def main() -> RunState:
        scheduler = Scheduler(
            cfg, name, spec, run_id="test", jobs=jobs, keep_going=keep_going, only=only,
            observers=[recorder] if recorder else [],
        )  # fmt: skip
        task = asyncio.create_task(scheduler.execute())
        if during is not None:
            await during(scheduler)
        return await task

    return asyncio.run(main())


def statuses(state: RunState) -> dict[str, str]:
    return {job.name: job.status.value for job in state.jobs()}


def reasons(state: RunState) -> dict[str, str | None]:
    return {job.name: job.reason for job in state.jobs() if job.status is not Status.SUCCEEDED}


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []
