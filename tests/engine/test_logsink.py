"""The store log sink: batched, merged, flushed within 200 ms, never blocking."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from stockade.engine.logsink import FLUSH_INTERVAL, StoreLogSink
from stockade.errors import StoreUnavailable
from stockade.runner.events import Event


def _out(text: str, stream: str = "stdout") -> Event:
    return Event("output", "j", {"stream": stream}, raw=text.encode())


def test_merges_consecutive_output_and_flushes_on_time() -> None:
    writes: list[tuple[float, list[dict[str, Any]]]] = []

    async def write(chunks: Sequence[dict[str, Any]]) -> None:
        writes.append((time.monotonic(), list(chunks)))

    async def main() -> float:
        sink = StoreLogSink(write, "j", 1)
        began = time.monotonic()
        for text in ("a\n", "b\n"):
            sink.emit(_out(text))
        sink.emit(_out("e\n", "stderr"))
        sink.emit(Event("progress", "j", {"value": 1}))
        await asyncio.sleep(FLUSH_INTERVAL + 0.1)
        sink.emit(_out("c\n"))
        await sink.aclose()
        return began

    began = asyncio.run(main())
    first_at, first = writes[0]
    assert first_at - began <= FLUSH_INTERVAL + 0.05
    assert [(c["stream"], c["text"]) for c in first] == [("stdout", "a\nb\n"), ("stderr", "e\n")]
    assert [c["text"] for c in writes[1][1]] == ["c\n"]


def test_a_failing_store_drops_and_counts_without_raising() -> None:
    async def write(chunks: Sequence[dict[str, Any]]) -> None:
        raise StoreUnavailable("down")

    async def main() -> int:
        sink = StoreLogSink(write, "j", 1)
        sink.emit(_out("lost\n"))
        await sink.aclose()
        return sink.dropped

    assert asyncio.run(main()) == 1
