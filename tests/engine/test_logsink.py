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


def _sink_run(texts: list[tuple[str, str]], head: int, tail: int) -> list[tuple[str, str]]:
    """What a sink with this budget writes for ``(stream, text)`` outputs, merged by stream."""
    written: list[dict[str, Any]] = []

    async def write(chunks: Sequence[dict[str, Any]]) -> None:
        written.extend(chunks)

    async def main() -> None:
        sink = StoreLogSink(write, "j", 1, head=head, tail=tail)
        for stream, text in texts:
            sink.emit(_out(text, stream))
        await sink.aclose()

    asyncio.run(main())
    merged: list[tuple[str, str]] = []
    for chunk in written:
        if merged and merged[-1][0] == chunk["stream"]:
            merged[-1] = (chunk["stream"], merged[-1][1] + chunk["text"])
        else:
            merged.append((chunk["stream"], chunk["text"]))
    return merged


def test_output_within_the_budget_is_kept_whole_without_a_marker() -> None:
    texts = [("stdout", "a\n"), ("stderr", "b\n"), ("stdout", "c\n" * 10)]
    assert _sink_run(texts, head=4, tail=100) == [
        ("stdout", "a\n"),
        ("stderr", "b\n"),
        ("stockade", _notice(4, 100)),
        ("stdout", "c\n" * 10),
    ]


def _notice(head: int, tail: int) -> str:
    return (
        f"[stockade] this attempt's log reached log_head ({head}); "
        f"its last {tail} (log_tail) follow when it ends\n"
    )


def test_cuts_fall_at_line_starts_and_are_counted_per_stream() -> None:
    texts = [("stdout", "".join(f"{i}\n" for i in range(100))), ("stderr", "e1\ne2\n")]
    texts += [("stdout", "last\n")]
    merged = _sink_run(texts, head=7, tail=10)
    assert merged[0] == ("stdout", "0\n1\n2\n")  # 6 bytes: the next line does not fit
    assert merged[-2:] == [("stderr", "e2\n"), ("stdout", "last\n")]  # 8 bytes, lines whole
    cut = merged[1][1].splitlines()[1]
    # stdout: lines 3..99 (7 * 2 + 90 * 3 bytes); stderr: e1
    assert cut == (
        "[stockade] log cut here: stderr 3 bytes (1 lines), stdout 284 bytes (97 lines) "
        "not kept (log_head 7, log_tail 10)"
    )


def test_a_line_longer_than_the_tail_keeps_whole_characters() -> None:
    merged = _sink_run([("stdout", "é" * 1000)], head=0, tail=11)
    assert merged[-1] == ("stdout", "é" * 5)  # 10 bytes: half a character is not kept
    assert "stdout 1990 bytes (0 lines)" in merged[-2][1]


def test_no_tail_keeps_only_the_head() -> None:
    merged = _sink_run([("stdout", "x\n" * 50)], head=4, tail=0)
    assert merged[0] == ("stdout", "x\nx\n")
    assert merged[-1][0] == "stockade" and "stdout 96 bytes (48 lines)" in merged[-1][1]
