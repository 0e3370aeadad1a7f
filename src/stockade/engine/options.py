"""How a worker runs (:class:`WorkerOptions`; the CLI's options map one to one).

Its own module so that what a worker's parts share (:mod:`~stockade.engine.host`)
does not import the worker itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from stockade.engine.prefetch import Prefetch
from stockade.engine.slot import ProfileFactory, SandboxFactory, declared_sandbox, local_sandbox
from stockade.runner.spec import RunSpec

__all__ = ["WorkerOptions"]


@dataclass
class WorkerOptions:
    """How a worker runs; the CLI's options map one to one."""

    slots: int = os.cpu_count() or 1
    lease: float = 30.0
    drain_timeout: float = 30.0
    poll: float = 0.5
    worker_id: str | None = None
    data_dir: str | None = None
    burst: bool = False
    #: The most jobs claimed ahead of a free slot, so a slot starts its next
    #: job the moment one ends instead of waiting for a claim round trip.
    #: The buffer holds what the slots start in a short horizon at the
    #: recent pace (:mod:`~stockade.engine.prefetch`), up to this (``None``:
    #: 32 per slot, at least 64; ``0``: claim only for free slots).
    prefetch: int | None = None
    #: The claim-ahead policy itself, when not the default one (tests set
    #: a pace with it); ``prefetch`` is then its limit's business.
    pace: Prefetch | None = None
    #: Seconds an attempt's end waits for others to be recorded with it in
    #: one transaction (group commit), when other jobs are in flight; the
    #: slot is free meanwhile.
    record_linger: float = 0.010
    #: Record ends and claim jobs in a store process of their own, off this
    #: process's GIL (see :mod:`~stockade.engine.storeproc`); the CLI's default.
    store_process: bool = False
    #: Prepare each busy slot's next job while its current one runs, and
    #: launch it the moment the slot is free (see ``Worker._fill_slots``).
    stage_ahead: bool = True
    #: The sandbox of jobs that declare none (the worker's default).
    sandbox: SandboxFactory = local_sandbox
    #: Adjusts such a job's RunSpec to the default sandbox's profile (its
    #: environment policy and wall-time limit); ``None`` leaves it as is.
    prepare: Callable[[RunSpec], RunSpec] | None = None
    #: The sandbox of a job that declares a profile: always that profile.
    profiles: ProfileFactory = declared_sandbox
    #: The sandbox backends whose jobs this worker claims (a job declaring
    #: another is left for a worker that offers it); ``None``: every backend
    #: usable on this host.
    offers: tuple[str, ...] | None = None
    #: The queues whose jobs it claims (``None``: every queue).
    queues: tuple[str, ...] | None = None
    #: The labels it offers: it claims a job only if it offers every label
    #: the job requires, with the same value (see :mod:`~stockade.store.routing`).
    labels: dict[str, str] = field(default_factory=dict)
    handle_signals: bool = True
    #: Fire due schedules and apply retention as a periodic task
    #: (:mod:`~stockade.engine.housekeeping`); `stockade serve` runs its own.
    chores: bool = True
    #: A directory for every attempt's whole output (``JOB_ID.N.stdout`` and
    #: ``.stderr``, unbounded; see :mod:`~stockade.engine.fulllog`); ``None``:
    #: the store's head and tail only.
    full_logs: str | None = None
    #: Start a fence process that kills this worker's jobs when the worker dies
    #: or cannot renew their leases (see :mod:`~stockade.sandbox.fence`).
    fence: bool = True
    #: Jobs survive this worker's death, and a restart under the same
    #: ``worker_id`` on this host takes them over (see :mod:`~stockade.engine.reattach`).
    reattach: bool = False
    #: Tell systemd (``$NOTIFY_SOCKET``) when the worker is ready and when it
    #: stops, and ping its watchdog (see :mod:`stockade.sdnotify`); off when
    #: the worker is part of a bigger service (`stockade serve` tells it).
    notify: bool = False
    #: Seconds between rounds of sending the store's due job-end
    #: notifications (see :mod:`~stockade.engine.notifier`); ``None``: never.
    send_notifications: float | None = 1.0
