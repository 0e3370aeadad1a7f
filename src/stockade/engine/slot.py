"""Slots: a worker's units of concurrency, each owning one sandbox.

A slot's sandbox is set up once, before the slot takes its first job, and
cleaned up when the worker stops (DESIGN.md: setup happens once per slot,
not per job). Which sandbox a slot gets is the worker's choice, given as a
factory, so the backends and their registry plug in without the engine
knowing them; the default is the ``local`` backend.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from stockade.errors import SandboxError
from stockade.sandbox.base import Sandbox

__all__ = ["SandboxFactory", "Slot", "local_sandbox"]

log = logging.getLogger("stockade.worker")

#: Makes the sandbox of slot number N (counting from 1).
SandboxFactory = Callable[[int], Sandbox]


def local_sandbox(index: int) -> Sandbox:
    """The default slot sandbox: the ``local`` backend, one slot cgroup each."""
    from stockade.sandbox.local import LocalSandbox

    return LocalSandbox(slot=f"w{os.getpid()}s{index}")


class Slot:
    """Slot ``index`` and its sandbox; :meth:`setup` before use, :meth:`cleanup` after."""

    def __init__(self, index: int, factory: SandboxFactory = local_sandbox) -> None:
        self.index = index
        self._factory = factory
        self.sandbox: Sandbox | None = None

    @property
    def ready(self) -> bool:
        return self.sandbox is not None

    def setup(self) -> None:
        """Make and set up the slot's sandbox; raises :class:`SandboxError` if it cannot."""
        if self.sandbox is not None:
            return
        sandbox = self._factory(self.index)
        sandbox.setup()
        self.sandbox = sandbox

    def cleanup(self) -> None:
        """Tear the sandbox down; what it left behind is logged, never raised."""
        sandbox, self.sandbox = self.sandbox, None
        if sandbox is None:
            return
        try:
            sandbox.cleanup()
        except SandboxError as exc:
            log.warning("slot %d: sandbox cleanup: %s", self.index, exc.message)

    def reset(self) -> None:
        """Clean up and set up again (after an infrastructure error in the slot)."""
        self.cleanup()
        self.setup()
