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
   without spending an attempt. A second signal skips the drain. Sandboxes
   are cleaned up, the worker's row is marked stopped.

A store that goes away pauses claiming (retried with backoff) and never
kills the worker; only a store that cannot be used at start-up is an error.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from stockade.engine.counters import Counters
from stockade.engine.execute import Running, execute
from stockade.engine.fencing import LeaseFence
from stockade.engine.keeper import keep, sweep_dead_slots
from stockade.engine.listener import Listener
from stockade.engine.slot import SandboxFactory, Slot, local_sandbox
from stockade.engine.storeio import AsyncStore, Recorder, wait_for_event
from stockade.engine.storeproc import StoreProcess
from stockade.engine.walwatch import WalWatch
from stockade.errors import StockadeError, StoreUnavailable
from stockade.runner import runtime
from stockade.runner.spec import RunSpec
from stockade.runner.turn import Turn
from stockade.store import CANCEL_CHANNEL, JOBS_CHANNEL, Claim, Store

__all__ = ["Worker", "WorkerOptions", "default_worker_id"]

log = logging.getLogger("stockade.worker")

#: Seconds of work the claim-ahead buffer holds at the recent pace, at
#: least: enough to cover a group commit's linger and its round trip, so
#: short jobs never wait for a claim, while long jobs (a pace of a few a
#: second) leave nothing claimed ahead for other workers to miss. A store
#: whose flushes take longer gets more (``REFILLS``).
PREFETCH_HORIZON = 0.02
#: ... or this many of the recorder's measured flush times, if that is more:
#: a claim made with one flush must last until the next one's arrives.
REFILLS = 2.0
#: The pace is the number of jobs started in the last this many seconds.
PACE_WINDOW = 0.1


def default_worker_id() -> str:
    """``HOST-PID-RANDOM``: unique across machines and restarts."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


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
    #: The buffer holds what the slots start in ``PREFETCH_HORIZON`` (or two
    #: flush times) at the recent pace, up to this (``None``: 32 per slot,
    #: at least 64; ``0``: claim only for free slots).
    prefetch: int | None = None
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
    sandbox: SandboxFactory = local_sandbox
    #: Adjusts each job's RunSpec to the slots' sandbox profile (its
    #: environment policy and wall-time limit); ``None`` leaves it as is.
    prepare: Callable[[RunSpec], RunSpec] | None = None
    handle_signals: bool = True
    #: Start a fence process that kills this worker's jobs when the worker dies
    #: or cannot renew their leases (see :mod:`~stockade.sandbox.fence`).
    fence: bool = True


class Worker:
    """One worker process's engine; :meth:`run` it in an event loop."""

    def __init__(self, store: Store, options: WorkerOptions | None = None) -> None:
        self.options = options or WorkerOptions()
        self.id = self.options.worker_id or default_worker_id()
        self.counters = Counters()
        self.astore = AsyncStore(store, on_error=lambda: self.counters.count("store_errors"))
        self.slots = [Slot(i + 1, self.options.sandbox) for i in range(self.options.slots)]
        self.running: dict[str, Running] = {}
        self._idle: list[Slot] = []
        self._ready: collections.deque[Running] = collections.deque()
        prefetch = self.options.prefetch
        self._prefetch = max(32 * len(self.slots), 64) if prefetch is None else prefetch
        #: When the recent jobs started (within ``PACE_WINDOW``), for the buffer's size.
        self._starts: collections.deque[float] = collections.deque()
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

    def request_stop(self) -> None:
        """First call: stop claiming and drain. Second call: stop running jobs now."""
        if self.stopping.is_set():
            if not self.forced.is_set():
                log.warning("second signal: stopping running jobs now")
            self.forced.set()
        else:
            log.info("stopping: no new jobs; draining %d running", len(self.running))
        self.stopping.set()
        for job, _ in self._staged.values():  # prepared but not started: back to the queue
            job.stop("shutdown")
        self.wake.set()
        self._slot_freed.set()

    async def run(self) -> int:
        """Run until stopped (or, in burst mode, until the queue is empty)."""
        loop = asyncio.get_running_loop()
        if self.options.fence:
            from stockade.sandbox import fence

            self.lease_fence.fence = fence.start()
        await self._start(loop)
        listener = self._listen(loop)
        keeper = loop.create_task(keep(self))
        try:
            await self._claim_loop()
        finally:
            if self._walwatch is not None:
                self._walwatch.stop()
            await self._drain()
            runtime.drain()  # the runtime directories kept for the next jobs
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            if listener is not None:
                await loop.run_in_executor(None, listener.stop)
            await self._stop(loop)
        return 0

    async def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        store = self.astore.store
        await self.astore.once(store.journal.register_worker, self.id, len(self.slots))
        await sweep_dead_slots(self)
        if self.options.worker_id:
            moved = await self.astore.once(store.jobs.recover_worker, self.id)
            if moved:
                log.warning("recovered %d job(s) this worker held before it restarted", len(moved))
                self.counters.count("lost", len(moved))
        if self.options.handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.request_stop)
        if self.options.store_process:
            await self._start_store_process()
        for slot in self.slots:
            await self._setup(slot)
        log.info("worker %s: %d slot(s) on %s", self.id, len(self.slots), self.astore.store.db.name)

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

    def _buffer(self) -> int:
        """How many claimed jobs to keep ready: what the slots start in the
        horizon (``PREFETCH_HORIZON``, or ``REFILLS`` flush times of the
        recorder if longer) at the pace of the last ``PACE_WINDOW``, at most
        the prefetch limit. A worker of long jobs keeps none; one of jobs that
        end every millisecond keeps a few dozen.

        The horizon follows the store: on a PostgreSQL whose commits wait for
        the disk, a fixed 20 ms ran dry before each refill arrived, and the
        slots stood idle for a fifth of the run."""
        if not self._prefetch:
            return 0
        starts, since = self._starts, time.monotonic() - PACE_WINDOW
        while starts and starts[0] < since:
            starts.popleft()
        horizon = max(PREFETCH_HORIZON, REFILLS * self.recorder.refill)
        return min(self._prefetch, round(len(starts) * horizon / PACE_WINDOW))

    def _want(self) -> int:
        """How many jobs to claim now: free slots plus the buffer, less what is claimed."""
        return len(self._idle) + self._buffer() - len(self._ready)

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
            job = Running(claim)
            self.running[claim.job_id] = job
            self._ready.append(job)
            self.counters.count("claimed")
        self._fill_slots()

    async def _claim_loop(self) -> None:
        while not self.stopping.is_set():
            buffer = self._buffer()
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
                claims = await self.astore.jobs(
                    "claim", self.id, want, self.options.lease, until=self.stopping
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
            turn = None
            if self._idle:
                slot = self._idle.pop()
            elif (busy := self._stageable()) is not None:
                slot, turn = busy, Turn()
            else:
                return
            job = self._ready.popleft()
            if turn is not None:
                self._staged[slot] = (job, turn)
            if self._prefetch:
                self._starts.append(time.monotonic())
            self._track(self._run_job(slot, job, turn))

    def _stageable(self) -> Slot | None:
        """A slot running a job with none staged behind it, if any."""
        if not self._stage_ahead:
            return None
        for slot in self.slots:
            if slot.ready and slot not in self._staged and slot not in self._idle:
                return slot
        return None

    def _hand_on(self, slot: Slot) -> None:
        """``slot`` is free: to the job staged for it, else to the idle ones."""
        staged = self._staged.pop(slot, None)
        if staged is not None:
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
        except Exception:  # a bug, not the job's fault: give the job back, keep the worker
            log.exception("job %s: unexpected error in the worker", job.claim.job_id)
            with contextlib.suppress(StockadeError):
                await self.astore.once(
                    self.astore.store.jobs.release, job.claim, reason="infrastructure",
                    error="worker error", transient=True,
                )  # fmt: skip
        finally:
            # Only this attempt's entry: when its lease was taken over, the
            # job's next attempt may be claimed (and listed) before it ends.
            if self.running.get(job.claim.job_id) is job:
                del self.running[job.claim.job_id]
                self.lease_fence.ended(job.claim.job_id)
            free()

    async def _queue_empty(self) -> bool:
        counts = await self.astore.call(self.astore.store.queries.count_by_state)
        return not self.running and not counts.get("queued") and not counts.get("running")

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
            job.stop("shutdown")
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._give_back()  # claimed ahead by a record that was in flight

    async def _give_back(self) -> None:
        """Return jobs claimed but not started to the queue (no attempt spent)."""
        while self._ready:
            job = self._ready.popleft()
            self.running.pop(job.claim.job_id, None)
            self.lease_fence.ended(job.claim.job_id)
            with contextlib.suppress(StockadeError):
                await self.astore.call(
                    self.astore.store.jobs.release, job.claim, reason="worker_shutdown",
                    until=self.forced,
                )  # fmt: skip
            self.counters.count("released")

    async def _stop(self, loop: asyncio.AbstractEventLoop) -> None:
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
        log.info("worker %s stopped: %s", self.id, self.counters.as_dict())
