"""Running an in-process worker against a real store for a test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from stockade.engine.jobspec import adhoc_task, new_job
from stockade.engine.worker import Worker, WorkerOptions
from stockade.store import Store, open_store


def submit(store: Store, shell: str, *, input: Any = None, delay: float = 0.0, **task: Any) -> str:
    """Queue one shell-line job; its id."""
    job = new_job("t", adhoc_task(shell=shell, **task), input=input, delay=delay)
    return store.jobs.submit([job])[0]


async def until(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``check`` until it is true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.02)


#: Options of the workers :func:`with_worker` starts (a test module may change them).
WORKER_DEFAULTS: dict[str, Any] = {"slots": 2, "poll": 0.05, "lease": 5.0, "handle_signals": False}


def with_worker(
    url: str,
    body: Callable[[Worker], Awaitable[None]],
    *,
    stop_twice: bool = False,
    **options: Any,
) -> Worker:
    """Run a worker on ``url`` while ``body`` runs, then stop it; the worker."""
    worker = Worker(open_store(url), WorkerOptions(**(WORKER_DEFAULTS | options)))

    async def main() -> None:
        task = asyncio.create_task(worker.run())
        try:
            await body(worker)
        finally:
            worker.request_stop()
            if stop_twice:
                worker.request_stop()
            await asyncio.wait_for(task, 30)

    asyncio.run(main())
    return worker


def gate(path: Path) -> str:
    """Shell that waits until ``path`` exists (for at most 30 s): a job that
    must run on until the test has seen what it checks, and no longer."""
    return f"i=0; while [ ! -e {path} ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done"


def state(store: Store, job_id: str) -> str:
    return store.queries.job(job_id).state.value
