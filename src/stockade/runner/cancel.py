"""A cancel request as the runner takes it: an event, or a future (done).

An event can only be waited on, which takes a task per attempt; a future
calls back. Both the supervisor and a waiting turn watch one the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["Cancel", "is_set", "watch"]

Cancel = asyncio.Event | asyncio.Future[Any] | None


def is_set(cancel: Cancel) -> bool:
    """Whether the cancel was requested."""
    if isinstance(cancel, asyncio.Future):
        return cancel.done()
    return cancel is not None and cancel.is_set()


def watch(cancel: Cancel, callback: Callable[[object], None]) -> Callable[[], None]:
    """Call ``callback`` once ``cancel`` is requested; returns the undo."""
    if isinstance(cancel, asyncio.Future):
        future = cancel
        future.add_done_callback(callback)

        def undo() -> None:
            future.remove_done_callback(callback)

        return undo
    if cancel is None:
        return lambda: None
    watcher = asyncio.ensure_future(cancel.wait())
    watcher.add_done_callback(callback)

    def stop_watching() -> None:
        watcher.cancel()

    return stop_watching
