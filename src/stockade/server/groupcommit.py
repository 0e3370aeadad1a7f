"""Group commit: the service's submissions written by one thread, many per transaction.

Under load, one transaction per request made every request pay a whole
commit and, on SQLite, made the thread pool's connections queue on the one
write lock (waiting in SQLite's busy handler, which sleeps in steps of
milliseconds even when the lock is free again). Here, a single writer thread
owns every submission: while it commits one batch, the requests that
arrive queue up, and it writes all of them in the next transaction
(:meth:`~stockade.store.serverq.ServerQueries.submit_batch`). There is no
added wait: at low load a batch is one request, committed at once; under
load the batch grows with the commit time.

Each caller still gets its own answer: its job and whether its call created
it (an ``Idempotency-Key`` seen before, or taken by an earlier request in the
same batch, returns the job that has it). If a batch fails as a whole, its
items are written again one at a time, each in its own transaction, so one
bad submission (or a key another server process inserted concurrently)
fails only its own request; a store that is unreachable fails the whole
batch at once (503 for each caller; nothing was stored, so a retry with the
same key is safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from dataclasses import dataclass

from stockade.errors import StoreUnavailable
from stockade.store import JobRecord, NewJob
from stockade.store.serverq import ServerQueries

__all__ = ["GroupCommit"]

log = logging.getLogger("stockade.server")

#: The most submissions one transaction takes (far below SQLite's bound-variable limit).
MAX_BATCH = 500

Outcome = tuple[JobRecord, bool]


@dataclass
class _Item:
    job: NewJob
    job_id: str | None
    future: asyncio.Future[Outcome]


class GroupCommit:
    """Submissions queued from the event loop, written by one thread in batches."""

    def __init__(self, sq: ServerQueries, max_batch: int = MAX_BATCH) -> None:
        self.sq = sq
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: Batches committed and submissions in them (for tests and benchmarks).
        self.batches = 0
        self.items = 0

    def waiting(self) -> bool:
        """Whether submissions are queued that the writer has not taken yet."""
        return not self._queue.empty()

    async def submit(self, job: NewJob, job_id: str | None = None) -> Outcome:
        """Queue ``job`` (under ``job_id`` when keyed); ``(job, created)`` once committed."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._start()
        self._queue.put(_Item(job, job_id, future))
        return await future

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="stockade-submit", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._write(batch)

    def _write(self, batch: list[_Item]) -> None:
        results: list[Outcome | BaseException]
        try:
            results = list(self.sq.submit_batch([(i.job, i.job_id) for i in batch]))
        except StoreUnavailable as exc:
            results = [exc] * len(batch)
        except Exception as exc:  # whatever it was: isolate the culprit
            log.info("group commit of %d submissions failed (%s): one at a time", len(batch), exc)
            results = [self._one(item) for item in batch] if len(batch) > 1 else [exc]
        self.batches += 1
        self.items += len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Item, Outcome | BaseException]]] = {}
        for item, result in zip(batch, results, strict=True):
            by_loop.setdefault(item.future.get_loop(), []).append((item, result))
        for loop, answers in by_loop.items():  # one wakeup of each loop per batch
            # A closed loop raises RuntimeError: nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, answers)

    def _one(self, item: _Item) -> Outcome | BaseException:
        try:
            if item.job_id is None:
                return self.sq.submit_batch([(item.job, None)])[0]
            return self.sq.submit_keyed(item.job, item.job_id)
        except Exception as exc:  # the caller's own error, raised in its request
            return exc


def _resolve(answers: list[tuple[_Item, Outcome | BaseException]]) -> None:
    """Hand each caller its own answer (on the event loop's thread)."""
    for item, result in answers:
        if item.future.done():  # the request was cancelled: the client went away
            continue
        if isinstance(result, BaseException):
            item.future.set_exception(result)
        else:
            item.future.set_result(result)
