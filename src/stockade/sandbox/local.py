"""The ``local`` backend: a plain session/process group, no isolation.

The default where nothing else is asked. It still offers guaranteed
kill-all: a slot cgroup where the host has cgroup v2, the process-tree walk
otherwise (see :mod:`stockade.sandbox.process`).
"""

from __future__ import annotations

import itertools
from typing import ClassVar

from stockade.sandbox.base import Availability, LaunchRequest, Sandbox
from stockade.sandbox.cgroup import SlotCgroup
from stockade.sandbox.process import PopenHandle, spawn

__all__ = ["LocalSandbox"]

_slot_numbers = itertools.count(1)


class LocalSandbox(Sandbox):
    """Runs jobs as host processes in a slot cgroup when one can be made."""

    name: ClassVar[str] = "local"

    def __init__(self, slot: str | None = None, use_cgroup: bool = True) -> None:
        self.slot = slot or f"slot{next(_slot_numbers)}"
        self.use_cgroup = use_cgroup
        self.cgroup: SlotCgroup | None = None

    @classmethod
    def availability(cls) -> Availability:
        return Availability(usable=True)

    def setup(self) -> None:
        if self.use_cgroup and self.cgroup is None:
            self.cgroup = SlotCgroup.create(self.slot)

    def launch(self, request: LaunchRequest) -> PopenHandle:
        return spawn(request.argv, request, self.cgroup)

    def cleanup(self) -> None:
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
