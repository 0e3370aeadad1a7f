"""Server-Sent Events of a job's log, resumable by chunk id.

Each chunk is one ``log`` event whose ``id`` is the chunk's id in the
store, so a client that reconnects with ``Last-Event-ID`` continues exactly
after what it has. When the job has finished and every chunk is out, an
``end`` event carries its state and the stream closes; so it does when the
server starts draining (a ``shutdown`` event) or the client goes away.

Between reads the stream waits for news of the job (:mod:`.wakeups`: a
PostgreSQL notification that chunks were written or the job ended), or
polls every 0.2 s when there are no notifications (SQLite, or the
listener's connection is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from stockade.server.service import Service
from stockade.store import TERMINAL

__all__ = ["format_event", "log_stream"]

KEEPALIVE = 15.0


def format_event(kind: str, data: Any, event_id: int | None = None) -> str:
    """One SSE event."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n"


async def log_stream(
    service: Service, job_id: str, after: int, request: Request
) -> AsyncIterator[str]:
    """The events of ``job_id``'s log after chunk ``after``."""
    quiet_since = time.monotonic()
    yield "retry: 1000\n\n"
    with service.wakeups.follow(job_id) as news:
        while True:
            news.clear()  # before reading: news during the read sets it again
            job = await run_in_threadpool(service.job, job_id)
            while True:
                chunks = await run_in_threadpool(service.logs, job_id, after)
                for chunk in chunks:
                    data = {"stream": chunk.stream, "attempt": chunk.attempt,
                            "text": chunk.text, "time": chunk.time}  # fmt: skip
                    yield format_event("log", data, chunk.id)
                    after = chunk.id
                if chunks:
                    quiet_since = time.monotonic()
                if len(chunks) < 1000:
                    break
            if job.state in TERMINAL:
                yield format_event("end", {"state": job.state.value, "outcome": job.outcome})
                return
            if service.draining:
                yield format_event("shutdown", {"retry": True})
                return
            if await request.is_disconnected():
                return
            if time.monotonic() - quiet_since > KEEPALIVE:
                quiet_since = time.monotonic()
                yield ": keepalive\n\n"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(news.wait(), service.wakeups.interval())
