"""Text about a job made safe to print: control characters become escapes.

Much of what stockade prints about a job comes from the job or its sender:
its error, a heredoc's key, a fan-out item, a task or test name, the tail
of its log in a failure summary. Printed raw, an ESC there recolours the
terminal, moves the cursor, retitles the window or worse, and a newline or
carriage return forges a line of stockade's own. Every renderer and error
message passes such text through :func:`printable` (the job's own output
stream, which stockade passes through as the job wrote it, does not).

Standard library only: ``stockade exec`` prints with it.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

#: C0 controls but tab, DEL, C1 controls, lone surrogates, and the
#: bidirectional overrides and isolates that reorder what a terminal shows.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every unsafe character written as its escape (``\\x1b``,
    ``\\x0a``, ``\\u202e``): one line, shown as it was sent, harmless."""
    if text.isprintable():
        return text
    return _UNSAFE.sub(_escape, text)
