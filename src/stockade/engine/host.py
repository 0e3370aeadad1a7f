"""What a worker's parts may use of the worker: :class:`JobHost`.

Running a job (:mod:`~stockade.engine.execute`), housekeeping
(:mod:`~stockade.engine.keeper`) and taking over a dead worker's jobs
(:mod:`~stockade.engine.reattach`) each get the worker as a
:class:`JobHost`: this is everything they touch of it, and all they may.
The worker (:class:`~stockade.engine.worker.Worker`) is one; none of those
modules imports it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from stockade.engine.counters import Counters
from stockade.engine.fencing import LeaseFence
from stockade.engine.jobstate import Running
from stockade.engine.options import WorkerOptions
from stockade.engine.storeio import AsyncStore, Recorder

__all__ = ["JobHost"]


class JobHost(Protocol):
    """The worker as its job-running and housekeeping parts see it."""

    #: The worker's id in the store (its ``--name``, or host-pid-random).
    id: str
    options: WorkerOptions
    #: The store, called off the event loop (thread or store process).
    astore: AsyncStore
    #: Records ends in batches, claiming successors with them.
    recorder: Recorder
    counters: Counters
    #: The fence's deadlines of the jobs this worker holds.
    lease_fence: LeaseFence
    #: The worker's jobs by id, each with its phase (:mod:`~stockade.engine.jobstate`).
    running: dict[str, Running]
    #: Set to claim now (new work, a retry due).
    wake: asyncio.Event
    #: Set to look at cancel requests now.
    cancel_wake: asyncio.Event
    #: Set when running jobs are to be killed at once (a second stop signal).
    forced: asyncio.Event
    #: Where this worker's jobs spool their output (``--reattach``).
    spool: Path
