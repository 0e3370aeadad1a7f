"""A cancel request as the runner takes it: an event, a future (done), or a
:class:`Stop` that a second request makes stronger.

An event can only be waited on, which takes a task per attempt; a future
calls back. Both the supervisor and a waiting turn watch one the same way.
A :class:`Stop` is requested like a future, and :meth:`Stop.force` escalates
it: a job being stopped gets no (further) grace, everything of it is
SIGKILLed at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["Cancel", "Stop", "is_forced", "is_set", "watch", "watch_force"]


class Stop:
    """A cancel that can be escalated: :meth:`request` runs the stop ladder
    (stop signal, grace, SIGKILL), :meth:`force` skips what is left of it."""

    __slots__ = ("_forced", "requested")

    def __init__(self) -> None:
        #: Done once a stop is requested (the runner watches it as a plain future).
        self.requested: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        #: Made only when someone forces or watches for force (most jobs never do).
        self._forced: asyncio.Future[None] | None = None

    def request(self) -> None:
        """Stop the job: stop signal, grace, SIGKILL."""
        if not self.requested.done():
            self.requested.set_result(None)

    def force(self) -> None:
        """Stop the job now: SIGKILL to all of it, no (further) grace."""
        self.request()
        forced = self._forced_future()
        if not forced.done():
            forced.set_result(None)

    @property
    def forced(self) -> bool:
        """Whether :meth:`force` was called."""
        return self._forced is not None and self._forced.done()

    def _forced_future(self) -> asyncio.Future[None]:
        if self._forced is None:
            self._forced = self.requested.get_loop().create_future()
        return self._forced


Cancel = asyncio.Event | asyncio.Future[Any] | Stop | None


def is_set(cancel: Cancel) -> bool:
    """Whether the cancel was requested."""
    if isinstance(cancel, Stop):
        cancel = cancel.requested
    if isinstance(cancel, asyncio.Future):
        return cancel.done()
    return cancel is not None and cancel.is_set()


def is_forced(cancel: Cancel) -> bool:
    """Whether the cancel was forced (only a :class:`Stop` can be)."""
    return isinstance(cancel, Stop) and cancel.forced


def watch(cancel: Cancel, callback: Callable[[object], None]) -> Callable[[], None]:
    """Call ``callback`` once ``cancel`` is requested; returns the undo."""
    if isinstance(cancel, Stop):
        cancel = cancel.requested
    if isinstance(cancel, asyncio.Future):
        return _on_done(cancel, callback)
    if cancel is None:
        return lambda: None
    watcher = asyncio.ensure_future(cancel.wait())
    watcher.add_done_callback(callback)

    def stop_watching() -> None:
        watcher.cancel()

    return stop_watching


def watch_force(cancel: Cancel, callback: Callable[[object], None]) -> Callable[[], None]:
    """Call ``callback`` once ``cancel`` is forced (only a :class:`Stop` can be);
    returns the undo."""
    if not isinstance(cancel, Stop):
        return lambda: None
    return _on_done(cancel._forced_future(), callback)


def _on_done(future: asyncio.Future[Any], callback: Callable[[object], None]) -> Callable[[], None]:
    future.add_done_callback(callback)

    def undo() -> None:
        future.remove_done_callback(callback)

    return undo
