"""Events: the one vocabulary every face consumes, and the Sink seam.

An attempt emits ``start``, ``output`` (stream + text), ``command`` (a
protocol command the job sent), ``progress``, ``annotation``, ``warning``
(something stockade noticed, e.g. an unknown command) and ``finish`` (with the
result record). Events are already masked when a sink sees them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Event", "ListSink", "Sink", "count_drop", "dropped_output", "wants"]


@dataclass(slots=True)
class Event:
    """One thing that happened to a job.

    ``raw`` carries the masked bytes of an ``output`` event for sinks that
    must reproduce the job's bytes exactly (the terminal); it is never
    serialized. It may be a ``memoryview`` into the runner's read buffer
    (no copy on the hot path): a sink that keeps it past ``emit`` keeps
    that buffer alive, so copy it with ``bytes()`` if you hold many.
    """

    kind: str
    job_id: str
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)
    raw: bytes | memoryview | None = None

    @property
    def text(self) -> str:
        """An ``output`` event's text, decoded from ``raw`` on first use.

        Decoding is left to the sinks that want text (JSON events, the
        store's log): the terminal writes ``raw`` as it is, and decoding a
        gigabyte nobody reads was a quarter of the runner's time. Invalid
        UTF-8 becomes U+FFFD.
        """
        text = self.data.get("text")
        if text is None:
            text = "" if self.raw is None else str(self.raw, "utf-8", "replace")
            self.data["text"] = text
        return str(text)

    def to_dict(self) -> dict[str, Any]:
        """``{"event": kind, "job_id": …, "time": …, **data}`` (with ``text`` for output)."""
        if self.kind == "output":
            _ = self.text
        return {"event": self.kind, "job_id": self.job_id, "time": self.time, **self.data}


class Sink(Protocol):
    """Receives events. ``emit`` must never block: a slow consumer buffers
    (bounded) and drops with a count, it never stalls the job.

    A sink may have an ``event_kinds`` attribute: the set of event kinds it
    uses (see :func:`wants`); one without uses every kind. It is a hint, not
    a filter: the runner skips building the ``start`` and ``finish`` events
    when no sink uses them (the finish event is the whole result as a
    dictionary, per attempt), and a sink still ignores kinds it was given
    for another sink's sake.

    A sink that can drop output also has ``dropped_streams``: how many
    ``output`` events of each stream it dropped (see :func:`dropped_output`);
    ``dropped`` counts every kind.
    """

    def emit(self, event: Event) -> None:
        """Take one event, without blocking."""

    async def aclose(self) -> None:
        """Deliver what is buffered and release resources."""

    @property
    def dropped(self) -> int:
        """How many events were dropped because the sink fell behind."""


def wants(sinks: Sequence[Sink], kind: str) -> bool:
    """Whether any of ``sinks`` takes events of ``kind``."""
    for sink in sinks:
        kinds = getattr(sink, "event_kinds", None)
        if kinds is None or kind in kinds:
            return True
    return False


def count_drop(counts: dict[str, int], event: Event) -> None:
    """Count ``event`` in a sink's ``dropped_streams`` if it is output."""
    if event.kind == "output":
        stream = str(event.data.get("stream", "stdout"))
        counts[stream] = counts.get(stream, 0) + 1


def dropped_output(sinks: Sequence[Sink], stream: str) -> int:
    """How many ``output`` events of ``stream`` the ``sinks`` dropped in all."""
    total = 0
    for sink in sinks:
        counts = getattr(sink, "dropped_streams", None)
        if counts:
            total += counts.get(stream, 0)
    return total


class ListSink:
    """Keeps every event in memory; for tests and the Python library face."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    async def aclose(self) -> None:
        return None

    @property
    def dropped(self) -> int:
        return 0

    def kinds(self) -> list[str]:
        """The kinds of the events received, in order."""
        return [e.kind for e in self.events]

    def text(self, stream: str = "stdout") -> str:
        """All output text of one stream, joined."""
        return "".join(
            e.text for e in self.events if e.kind == "output" and e.data["stream"] == stream
        )
