"""The worker: claims jobs in priority-then-age order and runs them in its slots.

Life of a worker (``stockade worker``):

1. **Start**: register in the store, set up each slot's sandbox once, start
   listening for wakeups (PostgreSQL ``LISTEN``, inotify on a SQLite
   database's log) and the housekeeping loop
   (:mod:`~stockade.engine.keeper`).
2. **Claim**: whenever slots are free, claim that many jobs in one
   statement; with nothing to claim, wait for a wakeup or ``poll`` seconds.
3. **Run**: each claim runs in a free slot (:func:`~stockade.engine.execute.execute`).
4. **Stop** on SIGTERM/SIGINT: stop claiming, let running jobs finish for up
   to ``drain_timeout``, then stop them and give them back to the queue
   without spending an attempt. A second signal kills running jobs at once.
   Sandboxes are cleaned up, the worker's row is marked stopped.

A store that goes away pauses claiming (retried with backoff) and never
kills the worker; only a store that cannot be used at start-up is an error.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Coroutine
from typing import Any

from stockade.engine.counters import Counters
from stockade.engine.execute import execute
from stockade.engine.fencing import LeaseFence
from stockade.engine.jobspec import declared_profile
from stockade.engine.jobstate import Phase, Running
from stockade.engine.keeper import keep, sweep_dead_slots
from stockade.engine.listener import Listener
from stockade.engine.logfields import job_fields, worker_fields
from stockade.engine.notifier import send_loop
from stockade.engine.options import WorkerOptions
from stockade.engine.prefetch import Prefetch
from stockade.engine.reattach import Adopted, dismiss, follow, take_over
from stockade.engine.slot import (
    Slot,
)
from stockade.engine.spool import Spool, spool_root
from stockade.engine.storeio import AsyncStore, Recorder, wait_for_event
from stockade.engine.storeproc import StoreProcess
from stockade.engine.walwatch import WalWatch
from stockade.errors import StockadeError, StoreUnavailable
from stockade.reasons import Reason
from stockade.runner import runtime
from stockade.runner.turn import Turn
from stockade.sdnotify import Notifier
from stockade.store import CANCEL_CHANNEL, JOBS_CHANNEL, Claim, Store
from stockade.store.routing import Offer

__all__ = ["Worker", "WorkerOptions", "default_worker_id"]

log = logging.getLogger("stockade.worker")


def sandbox_key(claim: Claim) -> str | None:
    """The profile key (:func:`~stockade.engine.slot.profile_key`) of the
    sandbox ``claim``'s job declares, from its frozen spec as it is."""
    frozen = claim.spec.get("sandbox")
    return None if frozen is None else json.dumps(frozen, sort_keys=True)


@functools.cache
def usable_backends() -> tuple[str, ...]:
    """The sandbox backends usable on this host (``stockade sandboxes``' check)."""
    from stockade.sandbox.registry import describe

    return tuple(name for name, _, usable in describe() if usable.usable)


def default_worker_id() -> str:
    """``HOST-PID-RANDOM``: unique across machines and restarts."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class Worker:
    """One worker process's engine; :meth:`run` it in an event loop."""

    def __init__(self, store: Store, options: WorkerOptions | None = None) -> None:
        self.options = options or WorkerOptions()
        self.id = self.options.worker_id or default_worker_id()
        self.counters = Counters()
        self.astore = AsyncStore(store, on_error=lambda: self.counters.count("store_errors"))
        self.slots = [
            Slot(i + 1, self.options.sandbox, self.options.profiles)
            for i in range(self.options.slots)
        ]
        #: The backends of the jobs it claims (see ``WorkerOptions.offers``).
        self.offers: tuple[str, ...] = self.options.offers or ()
        #: What it claims: its queues, labels and sandboxes (set at start).
        self.offer = Offer(sandboxes=self.offers)
        self.running: dict[str, Running] = {}
        self._idle: list[Slot] = []
        self._ready: collections.deque[Running] = collections.deque()
        limit = self.options.prefetch
        #: The claim-ahead policy (see :mod:`~stockade.engine.prefetch`).
        self.prefetch = self.options.pace or Prefetch(
            max(32 * len(self.slots), 64) if limit is None else limit
        )
        #: The job prepared ahead for a busy slot, and its turn (see _fill_slots).
        self._staged: dict[Slot, tuple[Running, Turn]] = {}
        self._stage_ahead = self.options.stage_ahead
        self._tasks: set[asyncio.Task[None]] = set()
        self.wake = asyncio.Event()
        self.cancel_wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.forced = asyncio.Event()
        #: A claim is in flight (the claim loop's or the recorder's claim-ahead).
        self._claiming = False
        self.recorder = Recorder(
            self.astore, self.forced, worker_id=self.id, lease=self.options.lease,
            ahead=self._claim_ahead, claimed=self._claimed, linger=self.options.record_linger,
            more=lambda pending: len(self.running) > pending,
        )  # fmt: skip
        self._slot_freed = asyncio.Event()
        self._walwatch: WalWatch | None = None
        self.lease_fence = LeaseFence(None, self.options.lease)
        #: When the claim in flight was sent: its jobs' leases start no earlier.
        self._claim_sent = 0.0
        #: Reattach mode: where the attempts' spools are (see :mod:`~stockade.engine.spool`).
        self.spool = spool_root(self.options.data_dir, self.id)
        #: systemd's notification socket, with ``notify`` (none: sends nothing).
        self._systemd = Notifier()

    def staged(self) -> list[str]:
        """The ids of the jobs prepared ahead, each waiting for its busy slot."""
        return [job.claim.job_id for job, _ in self._staged.values()]

    def request_stop(self) -> None:
        """First call: stop claiming and drain. Second call: kill running jobs
        now (SIGKILL to each job's tree, no grace, even one already stopping)."""
        if self.stopping.is_set():
            if not self.forced.is_set():
                log.warning("second signal: stopping running jobs now")
            self.forced.set()
            for job in self.running.values():
                job.stop("shutdown", force=True)
        else:
            log.info("stopping: no new jobs; draining %d running", len(self.running))
            self._systemd.notify("STOPPING=1", "STATUS=draining")
        self.stopping.set()
        for job, _ in self._staged.values():  # prepared but not started: back to the queue
            job.stop("shutdown")
        self.wake.set()
        self._slot_freed.set()

    async def run(self) -> int:
        """Run until stopped (or, in burst mode, until the queue is empty)."""
        loop = asyncio.get_running_loop()
        if self.options.fence and not self.options.reattach:  # reattach: _start starts it
            from stockade.sandbox import fence

            if self.options.worker_id:  # a reattach-mode process of this name left one?
                await loop.run_in_executor(None, dismiss, self.options.data_dir, self.id)
            self.lease_fence.fence = fence.start()
        if self.options.notify:  # before any job starts: jobs must not inherit the socket
            self._systemd = Notifier.from_environment()
        await self._start(loop)
        listener = self._listen(loop)
        keeper = loop.create_task(keep(self))
        every = self.options.send_notifications
        sender = (
            # Its store calls on a thread of their own: never queued before the jobs' ones.
            loop.create_task(send_loop(self.astore.store.outbox, asyncio.to_thread, every))
            if every is not None
            else None
        )
        self._systemd.notify("READY=1", f"STATUS=worker {self.id}: {len(self.slots)} slot(s)")
        watchdog = loop.create_task(self._systemd.keep_alive())
        try:
            await self._claim_loop()
        finally:
            if self._walwatch is not None:
                self._walwatch.stop()
            await self._drain()
            runtime.drain()  # the runtime directories kept for the next jobs
            for task in (keeper, sender):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if listener is not None:
                await loop.run_in_executor(None, listener.stop)
            await self._stop(loop)
            watchdog.cancel()  # only now: a drain may last longer than the watchdog's timeout
        return 0

    async def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        store = self.astore.store
        if self.options.offers is None:
            self.offers = await loop.run_in_executor(None, usable_backends)
        self.offer = Offer(
            sandboxes=self.offers,
            queues=self.options.queues,
            labels=tuple(sorted(self.options.labels.items())),
        )
        self.recorder.offers = self.offer
        await self.astore.once(
            store.journal.register_worker,
            self.id,
            len(self.slots),
            self.options.lease,
            list(self.offers),
            queues=None if self.options.queues is None else list(self.options.queues),
            labels=dict(self.options.labels),
        )
        adopted: list[Adopted] = []
        if self.options.reattach:
            adopted = await take_over(self)
        await sweep_dead_slots(self)
        if self.options.worker_id:
            keep = [one.claim.job_id for one in adopted]
            moved = await self.astore.once(store.jobs.recover_worker, self.id, keep)
            if moved:
                log.warning("recovered %d job(s) this worker held before it restarted", len(moved))
                self.counters.count("lost", len(moved))
        if self.options.handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.request_stop)
        if self.options.store_process:
            await self._start_store_process()
        for one in adopted:  # beside the slots: each runs in its old slot cgroup
            job = Running(one.claim, key=sandbox_key(one.claim), phase=Phase.LAUNCHED)
            self.running[one.claim.job_id] = job
            self._track(self._follow(job, one.spool))
        for slot in self.slots:
            await self._setup(slot)
        log.info(
            "worker %s: %d slot(s) on %s", self.id, len(self.slots), self.astore.store.db.name,
            extra=worker_fields(self.id),
        )  # fmt: skip

    async def _start_store_process(self) -> None:
        """Start the store process; without one, the store thread does its work."""
        db = self.astore.store.db
        process = StoreProcess(db.url.render_as_string(hide_password=False))
        try:
            await process.start()
        except StockadeError as exc:
            log.warning("no store process (%s); recording on the store thread", exc.message)
            return
        self.astore.process = process

    async def _setup(self, slot: Slot) -> None:
        """Set up a slot's sandbox, retrying an infrastructure failure with backoff;
        the slot then joins the idle ones."""
        delay = 0.5
        while not self.stopping.is_set():
            try:
                slot.setup()
            except StockadeError as exc:
                log.warning("slot %d: sandbox setup failed: %s; retrying", slot.index, exc.message)
                await wait_for_event(self.stopping, delay)
                delay = min(delay * 2, 30.0)
                continue
            self._hand_on(slot)
            self._slot_freed.set()
            return

    def _listen(self, loop: asyncio.AbstractEventLoop) -> Listener | None:
        """Wakeups for an idle worker: ``LISTEN`` on PostgreSQL (a thread, returned
        to be stopped), inotify on a SQLite database's WAL (:mod:`~stockade.engine.walwatch`)."""
        db = self.astore.store.db
        if db.dialect != "postgresql":
            database = db.url.database
            if database and database != ":memory:":
                watch = WalWatch(database, self.wake.set)
                if watch.start(loop):
                    self._walwatch = watch
            return None

        def on_note(channel: str, payload: str) -> None:
            target = self.cancel_wake if channel == CANCEL_CHANNEL else self.wake
            loop.call_soon_threadsafe(target.set)

        listener = Listener(db.url, [JOBS_CHANNEL, CANCEL_CHANNEL], on_note)
        listener.start()
        return listener

    def _want(self) -> int:
        """How many jobs to claim now: free slots plus the buffer, less what is claimed."""
        return self.prefetch.want(len(self._idle), len(self._ready), self.recorder.refill)

    def _claim_ahead(self) -> int:
        """For the recorder: claim successors with the ends it records (0: not now)."""
        if self.stopping.is_set() or self._claiming:
            return 0
        want = self._want()
        if want > 0:
            self._claiming = True
            self._claim_sent = time.monotonic()
        return max(want, 0)

    def _claimed(self, claims: list[Claim]) -> None:
        """Take claims the recorder made (``[]`` if its transaction failed)."""
        self._claiming = False
        self._add(claims)
        self._slot_freed.set()

    def _add(self, claims: list[Claim]) -> None:
        self.lease_fence.held([claim.job_id for claim in claims], self._claim_sent)
        for claim in claims:
            job = Running(claim, key=sandbox_key(claim))
            self.running[claim.job_id] = job
            self._ready.append(job)
            self.counters.count("claimed")
        self._fill_slots()

    async def _claim_loop(self) -> None:
        while not self.stopping.is_set():
            buffer = self.prefetch.buffer(self.recorder.refill)
            want = len(self._idle) + buffer - len(self._ready)
            # Top the buffer up in batches: one claim for several jobs is
            # nearly as cheap as a claim for one. While ends are being
            # recorded, the recorder claims ahead in the same transaction,
            # unless a slot is idle already.
            if (
                want <= 0
                or self._claiming
                or (not self._idle and (len(self._ready) > buffer // 2 or self.recorder.busy))
            ):
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            self.wake.clear()
            self._claiming = True
            self._claim_sent = time.monotonic()
            try:
                claims = await self.astore.claim(
                    self.id, want, self.options.lease, self.offer, until=self.stopping
                )
            except StoreUnavailable:
                break
            finally:
                self._claiming = False
            self._add(claims)
            if len(claims) < want:
                if self.options.burst and await self._queue_empty():
                    log.info("burst mode: queue empty, stopping")
                    self.stopping.set()
                    break
                await wait_for_event(self.wake, self.options.poll)

    def _fill_slots(self) -> None:
        """Start claimed jobs in idle slots, and prepare one ahead for each busy
        slot (never while stopping).

        A job prepared ahead (staged) waits for its slot's :class:`Turn`: the
        job running there hands the slot on with ``turn.go()`` the moment it
        is done with it, and the staged job's launch runs inside that call,
        usually in the callback that saw the last job exit.
        """
        while self._ready and not self.stopping.is_set():
            job, turn = self._ready[0], None
            slot = self._idle_fitting(job.key)
            if slot is not None:
                self._idle.remove(slot)
            elif (busy := self._stageable(job.key)) is not None:
                slot, turn = busy, Turn()
            elif self._idle:  # a slot in another profile: set it up in the job's
                slot = self._idle.pop()
                self._ready.popleft()
                self.prefetch.started()
                self._track(self._switch(slot, job))
                continue
            else:
                return
            self._ready.popleft()
            if turn is not None:
                job.advance(Phase.STAGED)
                self._staged[slot] = (job, turn)
            else:
                job.advance(Phase.LAUNCHED)
            self.prefetch.started()
            self._track(self._run_job(slot, job, turn))

    def _idle_fitting(self, key: str | None) -> Slot | None:
        """The idle slot most recently freed whose sandbox a job of ``key`` runs in."""
        for slot in reversed(self._idle):
            if slot.fits(key):
                return slot
        return None

    async def _switch(self, slot: Slot, job: Running) -> None:
        """Set ``slot`` up anew in ``job``'s declared profile, then run it there;
        a profile that cannot be set up here gives the job back (another
        worker may manage) and the slot returns to a sandbox that works."""
        try:
            profile = declared_profile(job.claim)
            await asyncio.get_running_loop().run_in_executor(
                None, functools.partial(slot.setup, profile, keep=False)
            )
        except StockadeError as exc:
            log.warning(
                "job %s: cannot set up its sandbox: %s", job.claim.job_id, exc.message,
                extra=job_fields(self.id, job.claim),
            )  # fmt: skip
            if self.running.get(job.claim.job_id) is job:
                del self.running[job.claim.job_id]
            job.advance(Phase.DONE)
            await self._give_back_broken(job, exc.message)
            self._track(self._setup(slot))
            return
        job.advance(Phase.LAUNCHED)
        await self._run_job(slot, job)

    def _stageable(self, key: str | None) -> Slot | None:
        """A slot running a job in profile ``key`` with none staged behind it, if any."""
        if not self._stage_ahead:
            return None
        for slot in self.slots:
            if (
                slot.ready
                and slot.fits(key)
                and slot not in self._staged
                and slot not in self._idle
            ):
                return slot
        return None

    def _hand_on(self, slot: Slot) -> None:
        """``slot`` is free: to the job staged for it, else to the idle ones."""
        staged = self._staged.pop(slot, None)
        if staged is not None:
            staged[0].advance(Phase.LAUNCHED)
            staged[1].go(slot.sandbox)  # the slot's sandbox now: a reset makes a new one
        else:
            self._idle.append(slot)
        self._fill_slots()

    def _track(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_job(self, slot: Slot, job: Running, turn: Turn | None = None) -> None:
        freed = False

        def free() -> None:
            nonlocal freed
            if freed:
                return
            freed = True
            if turn is not None and not turn.given:
                # Never had the slot (it ended before its turn): the slot stays
                # with its job; another claim may be staged behind it.
                if self._staged.get(slot, (None, None))[1] is turn:
                    del self._staged[slot]
                    self._fill_slots()
            elif slot.ready:
                self._hand_on(slot)
            else:
                self._track(self._setup(slot))
            self._slot_freed.set()

        try:
            await execute(self, slot, job, free, turn)
            if self.options.reattach:  # recorded: its spool is not needed any more
                Spool(self.spool, job.claim.job_id, job.claim.run).remove()
        except Exception:  # a bug, not the job's fault: give the job back, keep the worker
            log.exception(
                "job %s: unexpected error in the worker", job.claim.job_id,
                extra=job_fields(self.id, job.claim),
            )  # fmt: skip
            await self._give_back_broken(job, "worker error")
        finally:
            # Only this attempt's entry: when its lease was taken over, the
            # job's next attempt may be claimed (and listed) before it ends.
            job.advance(Phase.DONE)
            if self.running.get(job.claim.job_id) is job:
                del self.running[job.claim.job_id]
                self.lease_fence.ended(job.claim.job_id)
            free()

    async def _follow(self, job: Running, spool: Spool) -> None:
        """Follow an adopted job to its end (see :func:`~stockade.engine.reattach.follow`)."""
        try:
            await follow(self, job, spool)
        except Exception:  # a bug: the job's lease is left to expire
            log.exception("job %s: unexpected error following it", job.claim.job_id)
        finally:
            job.advance(Phase.DONE)
            if self.running.get(job.claim.job_id) is job:
                del self.running[job.claim.job_id]
                self.lease_fence.ended(job.claim.job_id)

    async def _give_back_broken(self, job: Running, error: str) -> None:
        """Give ``job`` back after an infrastructure failure (a transient one:
        it spends no attempt until they repeat)."""
        with contextlib.suppress(StockadeError):
            await self.astore.once(
                self.astore.store.jobs.release, job.claim, reason=Reason.INFRASTRUCTURE,
                error=error, transient=True,
            )  # fmt: skip

    async def _queue_empty(self) -> bool:
        """Burst mode's end: nothing runs here and no job this worker could
        claim is queued, or running elsewhere (it may be retried)."""
        if self.running:
            return False
        left = await self.astore.call(self.astore.store.queries.claimable, self.offer)
        return left == 0

    async def _drain(self) -> None:
        """Give back jobs claimed but not started; let running ones finish until
        the drain deadline, then stop them."""
        await self._give_back()
        if not self._tasks:
            return
        if not self.forced.is_set():
            log.info(
                "draining %d job(s) for up to %gs", len(self._tasks), self.options.drain_timeout
            )
            drained: asyncio.Future[Any] = asyncio.gather(*self._tasks, return_exceptions=True)
            forced: asyncio.Future[Any] = asyncio.ensure_future(self.forced.wait())
            await asyncio.wait(
                [drained, forced], timeout=self.options.drain_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )  # fmt: skip
            forced.cancel()
        for job in list(self.running.values()):
            job.stop("shutdown", force=self.forced.is_set())
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._give_back()  # claimed ahead by a record that was in flight

    async def _give_back(self) -> None:
        """Return jobs claimed but not started to the queue (no attempt spent)."""
        while self._ready:
            job = self._ready.popleft()
            job.advance(Phase.DONE)
            self.running.pop(job.claim.job_id, None)
            self.lease_fence.ended(job.claim.job_id)
            with contextlib.suppress(StockadeError):
                await self.astore.call(
                    self.astore.store.jobs.release, job.claim, reason=Reason.WORKER_SHUTDOWN,
                    until=self.forced,
                )  # fmt: skip
            self.counters.count("released")

    async def _stop(self, loop: asyncio.AbstractEventLoop) -> None:
        self.lease_fence.flush()  # no deadline left: the fence keeps nothing for a restart
        if self.options.handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        for slot in self.slots:
            await loop.run_in_executor(None, slot.cleanup)
        if self.astore.process is not None:
            await self.astore.process.close()
            self.astore.process = None
        store = self.astore.store
        with contextlib.suppress(StockadeError):
            await self.astore.once(
                store.journal.worker_seen, self.id, self.counters.as_dict(), stopped=True
            )
        await loop.run_in_executor(None, self.astore.close)
        log.info(
            "worker %s stopped: %s", self.id, self.counters.summary(),
            extra=worker_fields(self.id),
        )  # fmt: skip
