"""A cheap HTTP/1.1 load generator: keep-alive connections on bare asyncio streams.

Measuring a server's requests/s needs a client that costs less than the
server. httpx does not: with many requests queued on its pool it spends CPU
quadratic in their number (encode/httpx#3215), and even with one request
per connection it costs more CPU per request than the service under test,
so on a 2-CPU machine it measured itself. This client writes prepared bytes
on ``connections`` persistent sockets and reads each response by its
``Content-Length``; nothing else. It knows exactly enough HTTP for JSON
APIs on loopback (no chunked bodies, no redirects, no TLS).

Every request is in flight from the start: ``connections`` workers take the
next one from a shared queue as soon as their previous answer is in, so a
request's *latency* counts from the moment it is written (the server's
time, not the client's queue) and ``wall`` is the whole run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Answer", "Load", "Request", "run_load"]


@dataclass(frozen=True)
class Request:
    """One request to send: method, path, JSON body and extra headers."""

    method: str
    path: str
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self, host: str) -> bytes:
        data = b"" if self.body is None else json.dumps(self.body).encode()
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body is not None:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(data)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


@dataclass
class Answer:
    """A response: status, JSON body (or the text if not JSON), seconds taken."""

    index: int
    status: int
    body: Any
    latency: float


@dataclass
class Load:
    """Every answer in request order, and the wall time of the whole run."""

    answers: list[Answer]
    wall: float
    reconnects: int = 0

    @property
    def per_second(self) -> float:
        return len(self.answers) / self.wall if self.wall else 0.0

    def percentile(self, share: float) -> float:
        """The latency below which ``share`` of the requests finished."""
        ordered = sorted(a.latency for a in self.answers)
        return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


class _Closed(Exception):
    """The server closed the connection before answering."""


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError) as error:
        raise _Closed from error
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    try:
        return status, await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError) as error:
        raise _Closed from error


def _decode(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode(errors="replace")


async def run_load(
    host: str, port: int, requests: Sequence[Request], connections: int, retries: int = 3
) -> Load:
    """Send every request over ``connections`` keep-alive connections; their answers.

    A request whose connection the server closed is sent again on a new
    connection, up to ``retries`` times (safe for idempotent requests only,
    such as submissions with an ``Idempotency-Key``)."""
    pending: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(requests)):
        pending.put_nowait(index)
    payloads = [r.encode(f"{host}:{port}") for r in requests]
    answers: list[Answer | None] = [None] * len(requests)
    reconnects = 0

    async def worker() -> None:
        nonlocal reconnects
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not pending.empty():
                index = pending.get_nowait()
                started = time.perf_counter()
                for attempt in range(retries + 1):
                    try:
                        writer.write(payloads[index])
                        status, data = await _read_answer(reader)
                        break
                    except _Closed:
                        if attempt == retries:
                            raise
                        reconnects += 1
                        writer.close()
                        reader, writer = await asyncio.open_connection(host, port)
                latency = time.perf_counter() - started
                answers[index] = Answer(index, status, _decode(data), latency)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(connections, len(requests)))))
    wall = time.perf_counter() - started
    done = [a for a in answers if a is not None]
    return Load(done, wall, reconnects)
