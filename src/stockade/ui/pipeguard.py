"""A view that ends quietly when the reader of stockade's stdout goes away.

``stockade run … | head -1`` closes the pipe after one line. Writing more
raises :class:`BrokenPipeError`; from inside an observer that would end the
whole run (exit 1, its row left ``running``). :class:`ClosedPipeGuard` stops
showing instead: the run goes on to its end and is recorded as usual, its
exit status is the run's, and stdout is pointed at ``/dev/null`` so nothing
written later (Python's final flush among it) fails again.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from stockade.pipeline.model import Job, Observer, RunState

__all__ = ["ClosedPipeGuard"]


class ClosedPipeGuard:
    """Passes events to ``view`` until its output is found closed."""

    def __init__(self, view: Observer) -> None:
        self.view = view
        self.closed = False

    def event(self, kind: str, run: RunState, job: Job | None, data: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self.view.event(kind, run, job, data)
        except BrokenPipeError:
            self.closed = True
            _stdout_to_null()


def _stdout_to_null() -> None:
    """Point fd 1 at /dev/null: what is still buffered for it is dropped."""
    with contextlib.suppress(OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
