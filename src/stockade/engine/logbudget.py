"""The part of an attempt's output the store keeps: a head and a tail.

A job may print gigabytes; the store keeps the first ``head`` bytes of the
attempt's output (both streams, in the order they came) as they arrive, and
the last ``tail`` bytes, held in a ring in memory and written when the
attempt ends. What falls between is counted per stream (bytes and lines)
and replaced by one marker line. Cuts fall after a newline where the
budget allows, else between UTF-8 characters.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from stockade.units import format_size

__all__ = ["MARKER_STREAM", "Cut", "LogBudget"]

#: The ``stream`` of the log chunks stockade itself writes (its notes on the cut).
MARKER_STREAM = "stockade"


@dataclass
class Cut:
    """What one stream lost between the head and the tail."""

    bytes: int = 0
    lines: int = 0


@dataclass(slots=True)
class _Part:
    """Output of one stream held in the tail (a docstring spares ``dataclass``
    building one from the signature at import)."""

    stream: str
    data: bytes
    time: float


class LogBudget:
    """Splits one attempt's output into a head (written now), a held tail and a cut."""

    def __init__(self, head: int, tail: int) -> None:
        self.head = head
        self.tail = tail
        self._head_room = head
        self._ring: collections.deque[_Part] = collections.deque()
        self._ring_size = 0
        #: Per stream: what was neither in the head nor in the tail.
        self.cut: dict[str, Cut] = {}

    def add(self, stream: str, data: bytes | memoryview, time: float) -> bytes | memoryview:
        """Take output; return the part that belongs to the head (may be empty)."""
        room = self._head_room
        if room >= len(data):
            self._head_room -= len(data)
            return data
        self._head_room = 0
        if room <= 0:
            self._hold(_Part(stream, bytes(data), time))
            return b""
        head = bytes(data[:room])
        end = head.rfind(b"\n") + 1
        if not end and room == self.head:  # nothing in the head yet: one long line
            end = _utf8_back(data, room)
        self._hold(_Part(stream, bytes(data[end:]), time))
        return head[:end]

    def _hold(self, part: _Part) -> None:
        """Put ``part`` at the end of the tail; cut what no longer fits at its front."""
        self._ring.append(part)
        self._ring_size += len(part.data)
        while self._ring_size > self.tail:
            first = self._ring[0]
            excess = self._ring_size - self.tail
            if len(first.data) <= excess:
                self._ring.popleft()
                self._ring_size -= len(first.data)
                self._count(first.stream, first.data)
                continue
            # Cut the first part to the next line start (or character start).
            newline = first.data.find(b"\n", excess - 1)
            start = newline + 1 if newline >= 0 else _utf8_forward(first.data, excess)
            self._count(first.stream, first.data[:start])
            first.data = first.data[start:]
            self._ring_size -= start

    def _count(self, stream: str, data: bytes) -> None:
        cut = self.cut.get(stream)
        if cut is None:
            cut = self.cut[stream] = Cut()
        cut.bytes += len(data)
        cut.lines += data.count(b"\n")

    def held(self) -> list[tuple[str, bytes, float]]:
        """The tail, consecutive output of one stream merged: ``(stream, bytes, time)``."""
        merged: list[tuple[str, list[bytes], float]] = []
        for part in self._ring:
            if not part.data:
                continue
            if merged and merged[-1][0] == part.stream:
                merged[-1][1].append(part.data)
            else:
                merged.append((part.stream, [part.data], part.time))
        return [(stream, b"".join(datas), time) for stream, datas, time in merged]

    def notice(self) -> str:
        """The line written when the head is full (the rest waits for the end)."""
        return (
            f"[stockade] this attempt's log reached log_head ({format_size(self.head)}); "
            f"its last {format_size(self.tail)} (log_tail) follow when it ends\n"
        )

    def marker(self, whole: str | None = None) -> str | None:
        """The line that replaces what was cut, or ``None`` if nothing was;
        ``whole`` says where all of the output is, if it is somewhere."""
        cut = [(name, c) for name, c in sorted(self.cut.items()) if c.bytes]
        if not cut:
            return None
        what = ", ".join(f"{name} {c.bytes} bytes ({c.lines} lines)" for name, c in cut)
        return (
            f"[stockade] log cut here: {what} not kept "
            f"(log_head {format_size(self.head)}, log_tail {format_size(self.tail)})"
            + (f"; all of it: {whole}\n" if whole else "\n")
        )


def _utf8_back(data: bytes | memoryview, at: int) -> int:
    """The last index ``<= at`` that does not fall inside a UTF-8 sequence."""
    low = max(at - 3, 0)
    while at > low and at < len(data) and (data[at] & 0xC0) == 0x80:
        at -= 1
    return at


def _utf8_forward(data: bytes, at: int) -> int:
    """The first index ``>= at`` that does not fall inside a UTF-8 sequence."""
    high = min(len(data), at + 3)
    while at < high and (data[at] & 0xC0) == 0x80:
        at += 1
    return at
