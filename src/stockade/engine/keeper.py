"""The worker's housekeeping: leases, heartbeats, cancel requests, recovery.

Four periodic tasks, each on its own schedule, so that a slow one (a
recovery sweep, a retention batch waiting on a lock) never delays another:

* **cancel requests** (every ``poll`` seconds, or at once on a cancel
  notification, while jobs run): jobs a user asked to stop are stopped
  (stop signal, grace, SIGKILL) and end ``cancelled``; a forced cancel kills
  the job at once, even in the middle of its grace;
* **leases** (every ``lease/3``): the leases of the jobs this worker runs
  (or holds claimed for a free slot) are renewed in one statement, and the
  worker's row gets its counters; a job the store lists as this worker's
  but the worker does not know is left to expire and be recovered. A job missing
  from the answer was recovered by another worker after this one failed to
  renew in time: it is stopped here and its end is not recorded;
* **recovery** (every ``lease/2``): jobs of any worker whose lease expired
  are marked lost and retried or failed by policy, after the slot cgroups
  of dead stockade processes on this host are killed (:func:`sweep_dead_slots`);
* **chores** (every second, unless the worker is told not to): due
  schedules are fired and a retention batch is deleted when due
  (:mod:`~stockade.engine.housekeeping`), on a thread of their own, never
  queued before the renewals on the store's thread.

Each renewal also moves the renewed jobs' fence deadlines on
(:mod:`~stockade.engine.fencing`).

Store errors here are logged and skipped: the next tick tries again, and a
long outage simply lets leases expire, which recovery is made for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from stockade.engine.host import JobHost
from stockade.engine.housekeeping import FIRE_EVERY, Chores
from stockade.engine.logfields import job_fields, worker_fields
from stockade.engine.spool import live_attempts
from stockade.engine.storeio import wait_for_event
from stockade.errors import StoreError
from stockade.sandbox.fence import sweep
from stockade.store import JobState

__all__ = ["keep", "sweep_dead_slots"]

log = logging.getLogger("stockade.worker")


async def keep(worker: JobHost) -> None:
    """Run the housekeeping tasks until cancelled."""
    opts = worker.options
    chores = Chores(worker.astore.store, opts.data_dir) if opts.chores else None

    async def cancel_requests() -> None:
        if worker.running:
            await _cancel_requests(worker)

    async def run_chores() -> None:
        assert chores is not None
        fired, _ = await asyncio.to_thread(chores.run)
        if any(one.job_ids for one in fired):
            worker.wake.set()

    async with asyncio.TaskGroup() as group:
        group.create_task(every(opts.poll, cancel_requests, wake=worker.cancel_wake))
        group.create_task(every(opts.lease / 3, lambda: _renew(worker)))
        group.create_task(every(max(opts.lease / 2, opts.poll), lambda: _recover(worker)))
        if chores is not None:
            group.create_task(every(FIRE_EVERY, run_chores))


async def every(
    seconds: float, step: Callable[[], Awaitable[None]], *, wake: asyncio.Event | None = None
) -> None:
    """Run ``step`` now and then every ``seconds`` (sooner when ``wake`` is
    set) until cancelled; a store error is logged and the next tick tries
    again. The time a step takes does not move the ticks after it."""
    due = time.monotonic()
    while True:
        try:
            await step()
        except StoreError as exc:
            log.debug("housekeeping: %s", exc.message)
        due = max(due + seconds, time.monotonic())
        if wake is None:
            await asyncio.sleep(due - time.monotonic())
        else:
            await wait_for_event(wake, due - time.monotonic())
            wake.clear()


async def _cancel_requests(worker: JobHost) -> None:
    manager = worker.astore.store.jobs
    for job_id, run, forced in await worker.astore.once(manager.cancel_requests, worker.id):
        job = worker.running.get(job_id)
        if job is not None and job.claim.run == run:
            if forced and not job.cancel.forced:
                log.info(
                    "job %s: cancel forced, killing it",
                    job_id,
                    extra=job_fields(worker.id, job.claim),
                )
            elif not forced and job.interrupt is None:
                log.info(
                    "job %s: cancel requested, stopping it",
                    job_id,
                    extra=job_fields(worker.id, job.claim),
                )
            job.stop("cancel", force=forced)


async def _renew(worker: JobHost) -> None:
    store = worker.astore.store
    # Only jobs this worker held before the renew started are judged by its
    # answer: claims go through the store process, so a job claimed while
    # the renew ran can be here before the renew's answer, yet missing from it.
    before = dict(worker.running)
    worker.lease_fence.flush()
    sent = time.monotonic()
    held = await worker.astore.once(store.jobs.renew, worker.id, worker.options.lease, list(before))
    worker.lease_fence.held(
        [job_id for job_id, job in before.items() if held.get(job_id, (0,))[0] == job.claim.run],
        sent,
    )
    for job_id, job in before.items():
        if worker.running.get(job_id) is not job:
            continue  # ended meanwhile
        run, cancel = held.get(job_id, (None, False))
        if run != job.claim.run and not job.recording:
            log.warning(
                "job %s: lease taken over by another worker, stopping it", job_id,
                extra=job_fields(worker.id, job.claim),
            )  # fmt: skip
            job.stop("superseded")
        elif cancel:
            job.stop("cancel")
    await worker.astore.once(store.journal.worker_seen, worker.id, worker.counters.as_dict())


async def sweep_dead_slots(worker: JobHost) -> None:
    """Kill what dead stockade processes left in slot cgroups on this host,
    so that no job recovered here still runs (a dead worker's fence does it
    first; this covers a fence that died too)."""
    loop = asyncio.get_running_loop()
    swept = await loop.run_in_executor(None, sweep)
    if swept:
        log.warning("killed what dead processes left in %s", ", ".join(swept))
    await sweep_workspaces(worker)


async def sweep_workspaces(worker: JobHost) -> None:
    """Remove kept workspaces past their ``ttl`` and those of dead processes
    (:func:`stockade.runner.workspace.sweep`), off the event loop."""
    from stockade.runner.attempt import data_dir_for
    from stockade.runner.spec import RunSpec
    from stockade.runner.workspace import sweep as sweep_dirs

    data_dir = data_dir_for(RunSpec(argv=["-"], data_dir=worker.options.data_dir))

    def sweep() -> list[str]:
        # What a dead worker's jobs still run in (reattach) is not the dead's to lose.
        return sweep_dirs(data_dir, spare=live_attempts(worker.options.data_dir))

    try:
        removed = await asyncio.get_running_loop().run_in_executor(None, sweep)
    except OSError as exc:
        log.warning("sweeping workspaces under %s: %s", data_dir, exc)
        return
    if removed:
        log.info("removed %d workspace(s) past their time or of dead processes", len(removed))


async def _recover(worker: JobHost) -> None:
    await sweep_dead_slots(worker)
    moved = await worker.astore.once(worker.astore.store.jobs.recover_expired)
    if not moved:
        return
    worker.counters.count("lost", len(moved))
    for job_id, state in moved:
        log.warning(
            "job %s: lease expired, attempt lost; job %s", job_id, state.value,
            extra=worker_fields(worker.id, job_id),
        )  # fmt: skip
    if any(state is JobState.QUEUED for _, state in moved):
        worker.wake.set()
