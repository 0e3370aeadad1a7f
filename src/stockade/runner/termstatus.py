"""The status line ``stockade exec`` keeps at the bottom of a terminal.

A job's ``::progress value=N::message`` becomes ``stockade: [ 40%] message``
on stderr, redrawn in place (carriage return, erase line) as new values come.
Job output must never be overwritten or mixed into it, so the line is erased
before every write to the terminal and drawn again after it only when that
write ended a line (a prompt without a newline keeps the cursor where the
job left it; the status waits for the next complete line). Only for a
terminal: piped output never carries these control sequences.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["StatusLine", "Writes"]

Writes = list[tuple[int, bytes | memoryview]]

_ERASE = b"\r\x1b[K"


class StatusLine:
    """The progress status line on terminal ``fd``; ``ttys`` are the fds whose
    writes share that terminal (stdout and stderr, when both are one)."""

    def __init__(self, fd: int, ttys: set[int]) -> None:
        self.fd = fd
        self.ttys = ttys
        self.text = b""
        self.shown = False
        self.line_start = True

    def progress(self, data: dict[str, Any]) -> Writes:
        """Take a ``progress`` event's data; the writes that show it."""
        message = " ".join(str(data.get("message") or "").split())  # one line, always
        line = f"stockade: [{float(data.get('value', 0)):3.0f}%] {message}".rstrip()
        self.text = _fit(line, self.fd).encode("utf-8", "replace")
        if not self.line_start:
            return []  # drawn after the job's partial line is complete
        self.shown = True
        return [(self.fd, _ERASE + self.text)]

    def around(self, writes: Writes) -> Writes:
        """``writes`` to the terminal with the status erased first and drawn
        again after them when they end a line."""
        if not any(fd in self.ttys for fd, _ in writes):
            return writes
        last = writes[-1][1]
        self.line_start = bool(last) and last[-1:] == b"\n"
        if not self.text:
            return writes
        out: Writes = [(self.fd, _ERASE)] if self.shown else []
        out += writes
        self.shown = self.line_start
        if self.shown:
            out.append((self.fd, self.text))
        return out

    def clear(self) -> Writes:
        """The writes that take the line away for good (the job ended)."""
        shown, self.shown, self.text = self.shown, False, b""
        return [(self.fd, _ERASE)] if shown else []


def _fit(line: str, fd: int) -> str:
    """``line`` cut to the terminal's width, so it never wraps (a wrapped
    line could not be erased with one carriage return)."""
    try:
        width = os.get_terminal_size(fd).columns or 80  # 0: a terminal that never said
    except OSError:
        width = 80
    return line if len(line) < width else line[: max(width - 2, 1)] + "…"
