"""The engine's door to the store: blocking calls on one thread, retried when down.

The store is synchronous (one core, as the conventions ask); the worker is
asyncio. Every store call of a worker runs on one dedicated thread, so
calls keep their order (a log chunk written before a completion is
committed before it) and SQLite sees one writer per process.
:meth:`AsyncStore.call` retries :class:`~stockade.errors.StoreUnavailable`
with capped exponential backoff, so a database restart pauses a worker
instead of killing it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from stockade.errors import StoreUnavailable

if TYPE_CHECKING:
    from stockade.engine.storeproc import StoreProcess
    from stockade.runner.result import Result
    from stockade.store import Claim, JobState, Store
    from stockade.store.routing import Offer

__all__ = ["AsyncStore", "Recorder", "wait_for_event"]

log = logging.getLogger("stockade.worker")

P = ParamSpec("P")
T = TypeVar("T")

#: Longest pause between two tries of an unreachable store.
RETRY_CAP = 15.0
#: Weight of the newest flush in :attr:`Recorder.refill` (a moving average).
REFILL_WEIGHT = 0.2


async def wait_for_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout`` passes; whether it was set."""
    if event.is_set():
        return True
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


def _process_methods() -> frozenset[str]:
    """The calls a store process serves; imported only by a worker that has
    one (``stockade run`` never does)."""
    from stockade.engine.storeproc import METHODS

    return METHODS


class AsyncStore:
    """A :class:`Store` used from asyncio through one worker thread."""

    def __init__(self, store: Store, *, on_error: Callable[[], None] | None = None) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="stockade-store")
        self._on_error = on_error
        self.down = False
        #: Where :meth:`jobs` calls go when set (see :mod:`~stockade.engine.storeproc`).
        self.process: StoreProcess | None = None

    async def once(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the store thread, once."""
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))
        except StoreUnavailable:
            if self._on_error is not None:
                self._on_error()
            raise
        if self.down:
            self.down = False
            log.warning("store reachable again: %s", self.store.db.name)
        return result

    async def call(
        self,
        fn: Callable[..., T],
        *args: Any,
        until: asyncio.Event | None = None,
        **kwargs: Any,
    ) -> T:
        """Run ``fn``, retrying while the store is unavailable.

        Gives up (re-raising :class:`StoreUnavailable`) only once ``until``
        is set, so a worker told to stop is never held by a dead database.
        """
        return await self._retry(lambda: self.once(fn, *args, **kwargs), until)

    async def claim(
        self,
        worker_id: str,
        limit: int,
        lease: float,
        offers: Offer | None,
        *,
        until: asyncio.Event | None = None,
    ) -> list[Claim]:
        """``store.jobs.claim``, in the store process when the worker has one
        (see :meth:`_hot`)."""
        args = (worker_id, limit, lease, offers)
        claims: list[Claim] = await self._hot("claim", self.store.jobs.claim, args, until)
        return claims

    async def finish_and_claim(
        self,
        ends: list[tuple[Claim, Result]],
        worker_id: str,
        limit: int,
        lease: float,
        offers: Offer | None,
        *,
        until: asyncio.Event | None = None,
    ) -> tuple[list[JobState | None], list[Claim]]:
        """``store.jobs.finish_and_claim``, in the store process when the
        worker has one (see :meth:`_hot`)."""
        fn = self.store.jobs.finish_and_claim
        args = (ends, worker_id, limit, lease, offers)
        done: tuple[list[JobState | None], list[Claim]] = await self._hot(
            "finish_and_claim", fn, args, until
        )
        return done

    async def _hot(
        self,
        method: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        until: asyncio.Event | None,
    ) -> Any:
        """``fn(*args)`` (``store.jobs.<method>``) retried as :meth:`call`
        does, in the store process when the worker has one.

        A store process that died is dropped for good, with a warning: its
        calls and all later ones run on the store thread. A call in flight
        when it died may have been committed; run again, its ends are fenced
        off (recorded once) and jobs it claimed come back when their lease
        expires, as a dead worker's would.
        """

        async def attempt() -> Any:
            process = self.process
            if process is not None and method in _process_methods():
                try:
                    return await process.call(method, *args)
                except StoreUnavailable:
                    if process.ready:
                        raise  # the database, not the process: retried with backoff
                    log.warning("the store process is gone; recording on the store thread")
                    self.process = None
            return await self.once(fn, *args)

        return await self._retry(attempt, until)

    async def _retry(self, attempt: Callable[[], Awaitable[T]], until: asyncio.Event | None) -> T:
        tries = 0
        while True:
            try:
                return await attempt()
            except StoreUnavailable as exc:
                tries += 1
                if not self.down:
                    self.down = True
                    log.warning("%s; retrying", exc.message)
                if until is not None and until.is_set():
                    raise
                from stockade.runner.policy import backoff_delay  # only once the store is down

                delay = backoff_delay(tries, initial=0.1, multiplier=2.0, cap=RETRY_CAP)
                if until is not None:
                    await wait_for_event(until, delay)
                else:
                    await asyncio.sleep(delay)

    def close(self, *, dispose: bool = True) -> None:
        """Wait for the store thread's last call, then release connections
        (unless ``dispose`` is false: the store is someone else's)."""
        self._pool.shutdown(wait=True)
        if dispose:
            self.store.close()


class Recorder:
    """Group commit of attempt ends: every end waiting for the store thread
    when it comes free is recorded in one transaction
    (:meth:`~stockade.store.JobManager.finish_and_claim`), so a busy worker
    commits once per batch instead of once per job.

    With ``ahead`` given, the same transaction also claims the jobs that
    replace the ones ending (claim-ahead): ``ahead()`` says how many to
    claim (0 for none) and ``claimed`` receives them (an empty list when the
    transaction failed), so a busy worker needs one store round trip per
    batch of jobs, not one to record and one to claim.

    ``linger`` (seconds) lets a flush wait for more ends before it takes its
    batch: a worker whose jobs end every millisecond then commits every few
    jobs instead of every one or two, at the price of recording each end
    that much later (its slot is already running the next job). It waits
    only while ``more()`` says other ends are on their way (other jobs in
    flight): a worker's only job is recorded at once.

    :attr:`refill` is how long a flush takes, linger included: the time a
    claim-ahead needs to arrive, for the worker to size its buffer by. It is
    measured because it differs by store: about 12 ms on SQLite, 17 ms on
    a PostgreSQL whose commits wait for the disk.
    """

    def __init__(
        self,
        astore: AsyncStore,
        forced: asyncio.Event,
        *,
        worker_id: str = "",
        lease: float = 0.0,
        ahead: Callable[[], int] | None = None,
        claimed: Callable[[list[Claim]], None] | None = None,
        linger: float = 0.0,
        more: Callable[[int], bool] | None = None,
    ) -> None:
        self.astore = astore
        self.forced = forced
        self.worker_id = worker_id
        self.lease = lease
        #: The sandbox backends of the jobs it claims ahead (the worker's offer).
        self.offers: Offer | None = None
        self._ahead = ahead
        self.linger = linger
        self._more = more
        self._claimed = claimed
        self._pending: list[tuple[Claim, Result, asyncio.Future[JobState | None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        #: Seconds a flush takes, from its first end to its commit (moving average).
        self.refill = linger

    @property
    def busy(self) -> bool:
        """Whether ends are waiting or being recorded (a claim-ahead may come with them)."""
        return bool(self._pending) or (self._flushing is not None and not self._flushing.done())

    async def finish(self, claim: Claim, result: Result) -> JobState | None:
        """Record one end (batched with others); the job's new state or ``None``."""
        future: asyncio.Future[JobState | None] = asyncio.get_running_loop().create_future()
        self._pending.append((claim, result, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            began = time.monotonic()
            if self.linger > 0 and (self._more is None or self._more(len(self._pending))):
                await asyncio.sleep(self.linger)
            batch, self._pending = self._pending, []
            limit = self._ahead() if self._ahead is not None else 0
            claims: list[Claim] = []
            try:
                states, claims = await self.astore.finish_and_claim(
                    [(c, r) for c, r, _ in batch],
                    self.worker_id, limit, self.lease, self.offers, until=self.forced,
                )  # fmt: skip
            except Exception as exc:  # handed to every waiter; the flusher goes on
                for _, _, future in batch:
                    future.set_exception(exc)
                continue
            finally:
                if limit and self._claimed is not None:
                    self._claimed(claims)
            took = time.monotonic() - began
            self.refill += REFILL_WEIGHT * (took - self.refill)
            for (_, _, future), state in zip(batch, states, strict=True):
                future.set_result(state)
