"""Turns: an attempt prepared ahead of its slot, launched the moment the slot is free.

A worker whose slot is busy prepares the slot's next attempt meanwhile: its
runtime directory, input, environment and pipes, a tenth of a millisecond
of the event loop's time per job. The attempt is given a :class:`Turn`
(``run(turn=...)``), hands it its launch and waits. When the slot's current
job is over, the worker calls :meth:`Turn.go` and the launch runs inside
that call, usually in the very callback that saw the last job exit,
instead of after the next attempt's whole preparation and a task switch.

A turn never launches anything by itself: only :meth:`go` does, once, and
an attempt whose ``cancel`` is set while it waits ends without launching.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from stockade.runner.cancel import Cancel, is_set, watch

if TYPE_CHECKING:
    from stockade.sandbox.base import Sandbox

__all__ = ["Turn"]


class Turn:
    """A slot's turn for one prepared attempt."""

    def __init__(self) -> None:
        self._free = False
        #: The sandbox to launch in, when :meth:`go` names one.
        self.sandbox: Sandbox | None = None
        self._launch: Callable[[], None] | None = None
        self._waiter: asyncio.Future[bool] | None = None
        #: The attempt was launched (by :meth:`go`, or at once on a free slot).
        self.launched = False

    @property
    def given(self) -> bool:
        """Whether :meth:`go` was called: the slot is this attempt's."""
        return self._free

    def go(self, sandbox: Sandbox | None = None) -> None:
        """The slot is free: launch the waiting attempt now, in this call, or
        the moment it is ready to launch. ``sandbox``: the slot's sandbox now,
        if it is not the one the attempt was prepared with (the slot was set
        up anew meanwhile)."""
        self._free = True
        self.sandbox = sandbox
        if self._launch is not None:
            self._start()

    async def wait(self, launch: Callable[[], None], cancel: Cancel) -> bool:
        """For the attempt: have ``launch`` called when the slot is free.
        ``False`` (and nothing launched) if ``cancel`` came first."""
        if is_set(cancel):
            return False
        self._launch = launch
        if self._free:
            self._start()
            return True
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiter = waiter

        def stop(_: object = None) -> None:
            if not waiter.done():
                self._launch = None
                waiter.set_result(False)

        unwatch = watch(cancel, stop)
        try:
            return await waiter
        finally:
            self._launch = None
            unwatch()

    def _start(self) -> None:
        launch, self._launch = self._launch, None
        assert launch is not None
        self.launched = True
        launch()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(True)
