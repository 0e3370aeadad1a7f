"""The hot path: one output stream from pipe bytes to masked, kept, logged events.

Work is done on chunks of complete lines, not line by line: a chunk is masked
with C-level ``bytes.replace`` calls, scanned for protocol commands with one
``find``, and split into lines only when it may hold a command. A secret
without a newline therefore never spans two chunks; a multi-line secret is
masked line by line (see :class:`~stockade.runner.redact.Masker`). A line
that grows past :data:`FRAGMENT` bytes without a newline is emitted in
pieces, holding back ``max_len - 1`` masked bytes so a secret split across
reads still cannot leak, and memory stays bounded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import IO

from stockade.runner.events import Event
from stockade.runner.protocol import LEADING, Command, ProtocolParser
from stockade.runner.redact import Masker
from stockade.runner.result import StreamStats

__all__ = ["FRAGMENT", "LogWriter", "OutputKeeper", "StreamPipe"]

#: Longest partial line held before it is emitted in pieces.
FRAGMENT = 64 * 1024
_LEADING = LEADING.encode()


class OutputKeeper:
    """Keeps the first ``limit`` bytes of a stream, cut at a line or word boundary."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buf = bytearray()
        self.full = limit <= 0
        self.truncated = False

    def add(self, data: bytes | memoryview) -> bytes | memoryview:
        """Keep what fits of ``data``; return the part kept."""
        if self.full:
            if data:
                self.truncated = True
            return b""
        room = self.limit - len(self.buf)
        if len(data) <= room:
            self.buf += data
            return data
        part = bytes(data[:room])
        cut = part.rfind(b"\n") + 1 or part.rfind(b" ") + 1
        if cut == 0:
            cut = _utf8_boundary(part, room) if not self.buf else 0
        kept = part[:cut]
        self.buf += kept
        self.full = True
        self.truncated = True
        return kept

    def text(self) -> str:
        """The kept bytes as text (replacement characters for invalid UTF-8)."""
        return self.buf.decode("utf-8", "replace")


def _utf8_boundary(data: bytes, end: int) -> int:
    """The largest cut ``<= end`` that does not split a UTF-8 sequence."""
    cut = end
    while cut > 0 and cut > end - 4 and (data[cut - 1] & 0xC0) == 0x80:
        cut -= 1
    if cut > 0 and data[cut - 1] >= 0xC0:
        cut -= 1
    return cut if cut > end - 4 else end


class LogWriter:
    """The attempt's log file: one JSON object per line (time, stream, text).

    Text is decoded with ``surrogateescape`` so invalid UTF-8 and binary
    output survive as escapes and the original bytes can be recovered.
    """

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.path = fh.name

    def write(self, stream: str, text: str) -> None:
        """Append one record."""
        record = {"time": time.time(), "stream": stream, "text": text}
        self._fh.write(json.dumps(record).encode() + b"\n")

    def flush(self) -> None:
        """Push buffered records to the file so followers see them."""
        self._fh.flush()

    def close(self) -> None:
        """Flush and close."""
        self._fh.close()


CommandHandler = Callable[[Command], None]


class StreamPipe:
    """One stream of one attempt: feed it bytes as they are read."""

    def __init__(
        self,
        stream: str,
        job_id: str,
        masker: Masker,
        keeper: OutputKeeper,
        emit: Callable[[Event], None],
        log: LogWriter | None = None,
        parser: ProtocolParser | None = None,
        on_command: CommandHandler | None = None,
    ) -> None:
        self.stream = stream
        self.job_id = job_id
        self.masker = masker
        self.keeper = keeper
        self.emit = emit
        self.log = log
        self.parser = parser
        self.on_command = on_command
        self.stats = StreamStats()
        self.pending = b""
        self.in_fragment = False

    def feed(self, data: bytes) -> None:
        """Take bytes just read from the pipe.

        The held partial line and the new bytes are masked together first, so
        a secret split across reads is whole when it is looked for; complete
        lines are then passed on as a view of that one buffer (no copy), and
        the new partial line, already masked, is held for the next read.
        """
        self.stats.bytes_seen += len(data)
        if self.pending:
            data = self.pending + data
            self.pending = b""
        if self.masker:
            data = self.masker.mask_bytes(data)
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) > FRAGMENT:
                self._fragment(data)
            else:
                self.pending = data
            return
        if cut < len(data):
            self.pending = data[cut:]
        self._lines(data, cut)
        if len(self.pending) > FRAGMENT:
            data, self.pending = self.pending, b""
            self._fragment(data)

    def flush_partial(self) -> None:
        """Emit a partial line that has waited (a prompt, a progress dot).

        A partial line that looks like a command, maybe indented, is left for
        its newline.
        """
        if not self.pending or (
            not self.in_fragment and self.pending.lstrip(_LEADING).startswith(b":")
        ):
            return
        data, self.pending = self.pending, b""
        self._fragment(data)

    def close(self) -> None:
        """The pipe reached EOF: emit what is left."""
        if self.pending:
            data, self.pending = self.pending, b""
            self._lines(data, len(data))
        self.stats.bytes_kept = len(self.keeper.buf)
        self.stats.truncated = self.keeper.truncated

    def _fragment(self, masked: bytes) -> None:
        """Emit all of an already masked partial line but a tail that could
        begin a secret; the tail waits in ``pending`` for the next read."""
        hold = max(self.masker.max_len - 1, 0)
        if hold and len(masked) <= hold:
            self.pending = masked
            return
        if hold:
            self.pending = masked[-hold:]
            masked = masked[:-hold]
        self.in_fragment = True
        self._deliver(masked)

    def _lines(self, data: bytes, end: int) -> None:
        """Pass on ``data[:end]``, complete lines that are already masked."""
        view = memoryview(data)[:end] if end < len(data) else data
        start = 0
        if self.in_fragment:
            # The first line finishes a fragment: plain output, never a command.
            start = data.find(b"\n", 0, end) + 1 or end
            self.in_fragment = False
            self._deliver(view[:start])
            if start == end:
                return
        rest = view[start:] if start else view
        if self.parser is None or not self.parser.might_contain_command(rest):
            self._deliver(rest)
            return
        self._lines_with_commands(bytes(rest))

    def _lines_with_commands(self, data: bytes) -> None:
        """The rare path: split into lines and let the parser pick commands.

        Plain lines are masked again before delivery: an ``add-mask`` earlier
        in the same chunk must already apply to them.
        """
        assert self.parser is not None
        plain: list[bytes] = []
        for line in data.splitlines(keepends=True):
            text = line.decode("utf-8", "replace").rstrip("\n")
            command = self.parser.feed_line(text)
            for message in self.parser.take_warnings():
                self.emit(Event("warning", self.job_id, {"message": message}))
            if command is None:
                plain.append(line)
                continue
            if plain:
                self._deliver(self.masker.mask_bytes(b"".join(plain)))
                plain.clear()
            if self.on_command is not None:
                self.on_command(command)
        if plain:
            self._deliver(self.masker.mask_bytes(b"".join(plain)))

    def _deliver(self, masked: bytes | memoryview) -> None:
        """Send masked bytes to the keeper, the log and the sinks."""
        if not masked:
            return
        kept = self.keeper.add(masked)
        if self.log is not None and kept:
            self.log.write(self.stream, _dec(kept))
        self.emit(Event("output", self.job_id, {"stream": self.stream}, raw=masked))


def _dec(data: bytes | memoryview) -> str:
    return str(data, "utf-8", "surrogateescape")
