"""A test's output kept within a byte budget: its head and its tail.

A failing test often logs a lot before it says what failed, so keeping only
the first lines loses the failure. :class:`Clip` keeps the first
:data:`HEAD_BYTES` and the last :data:`TAIL_BYTES` of the lines it is given
and, between them, one line saying how many lines and bytes were cut.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

__all__ = ["HEAD_BYTES", "TAIL_BYTES", "Clip", "clipped"]

HEAD_BYTES = 16 * 1024
"""Bytes (UTF-8) of a test's first output lines kept."""
TAIL_BYTES = 48 * 1024
"""Bytes (UTF-8) of a test's last output lines kept: the failure is usually there."""


class Clip:
    """Lines in arrival order, kept as a head and a tail within a byte budget."""

    def __init__(self, head: int = HEAD_BYTES, tail: int = TAIL_BYTES) -> None:
        self.head_budget, self.tail_budget = head, tail
        self.head: list[str] = []
        self.tail: deque[tuple[str, int]] = deque()
        self.head_bytes = self.tail_bytes = 0
        self.cut_lines = self.cut_bytes = 0

    def add(self, line: str) -> None:
        """Keep ``line`` (a line longer than the tail budget is itself cut)."""
        size = len(line.encode("utf-8", "surrogatepass"))
        if not self.tail and self.head_bytes + size <= self.head_budget:
            self.head.append(line)
            self.head_bytes += size
            return
        if size > self.tail_budget:
            self.cut_bytes += size - self.tail_budget
            line = line[-self.tail_budget :]
            size = len(line.encode("utf-8", "surrogatepass"))
        self.tail.append((line, size))
        self.tail_bytes += size
        while self.tail_bytes > self.tail_budget:
            _, dropped = self.tail.popleft()
            self.tail_bytes -= dropped
            self.cut_lines += 1
            self.cut_bytes += dropped

    def lines(self) -> list[str]:
        """The head, a line saying what was cut (if anything), the tail."""
        out = list(self.head)
        if self.cut_lines or self.cut_bytes:
            out.append(
                f"... [stockade: {self.cut_lines} lines ({self.cut_bytes} bytes) of this "
                "test's output cut; see the job's log] ...\n"
            )
        out += [line for line, _ in self.tail]
        return out


def clipped(lines: Iterable[str], head: int = HEAD_BYTES, tail: int = TAIL_BYTES) -> list[str]:
    """``lines`` as a :class:`Clip` keeps them."""
    clip = Clip(head, tail)
    for line in lines:
        clip.add(line)
    return clip.lines()
