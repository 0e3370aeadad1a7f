"""What the faces call: submit, wait, follow logs, run a worker.

The CLI (and later the HTTP server) go through these functions and never
reach into the runner or the store's internals themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stockade.errors import StoreError
from stockade.runner import policy
from stockade.runner.result import Outcome
from stockade.store import TERMINAL, JobRecord, LogChunk

if TYPE_CHECKING:
    from stockade.spec import Config, TaskSpec
    from stockade.store import Store
    from stockade.store.lite import Reader

__all__ = ["exit_status", "follow_logs", "run_worker", "submit", "wait"]


def submit(
    store: Store,
    name: str,
    task: TaskSpec,
    *,
    config: Config | None = None,
    input: Any = None,
    priority: int | None = None,
    delay: float = 0.0,
) -> str:
    """Enqueue one job of ``task``; its id."""
    from stockade.engine.jobspec import new_job

    job = new_job(name, task, config=config, input=input, priority=priority, delay=delay)
    return store.jobs.submit([job])[0]


def wait(
    store: Store, job_id: str, *, poll: float = 0.2, timeout: float | None = None
) -> JobRecord:
    """Wait until the job is finished (succeeded, failed or cancelled); its record."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        job = store.queries.job(job_id)
        if job.state in TERMINAL:
            return job
        if deadline is not None and time.monotonic() > deadline:
            raise StoreError(f"job {job_id} is still {job.state.value} after {timeout:g}s")
        time.sleep(poll)


def exit_status(job: JobRecord) -> int:
    """The status a command reports for a finished job: the same as
    ``stockade exec`` reports for the same end (:func:`stockade.runner.policy.exit_status`)."""
    try:
        outcome: Outcome | None = Outcome(job.outcome or "")
    except ValueError:  # not finished (or an outcome this stockade does not know)
        outcome = None
    return policy.exit_status(
        outcome, exit_code=job.exit_code, signal=job.signal, reason=job.reason
    )


def follow_logs(
    store: Reader,
    job_id: str,
    write: Callable[[LogChunk], None],
    *,
    follow: bool = False,
    attempt: int | None = None,
    poll: float = 0.2,
    seen: Callable[[JobRecord], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> JobRecord:
    """Write the job's log chunks in order; with ``follow``, keep writing new
    ones until the job has finished and every chunk is out. The job's record.

    ``seen`` is given each record read (once per poll); ``stop()``, asked
    after each poll's wait, ends the following early (a Ctrl-C caught by
    the caller): the record is then the last one read."""
    after = 0
    while True:
        job = store.queries.job(job_id)
        if seen is not None:
            seen(job)
        while True:
            chunks = store.queries.logs(job.id, after=after, attempt=attempt)
            for chunk in chunks:
                write(chunk)
                after = chunk.id
            if len(chunks) < 1000:
                break
        if not follow or job.state in TERMINAL:
            return job
        time.sleep(poll)
        if stop is not None and stop():
            return job


def run_worker(store: Store, options: Any) -> int:
    """Run a worker in a new event loop until it stops; its exit status."""
    import asyncio

    from stockade.engine.worker import Worker
    from stockade.sandbox.proctree import enable_subreaper

    enable_subreaper()
    return asyncio.run(Worker(store, options).run())
