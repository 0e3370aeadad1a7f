"""The ``local`` backend: a plain session/process group, no isolation.

The default where nothing else is asked. It still offers guaranteed
kill-all: a slot cgroup where the host has cgroup v2, the process-tree walk
otherwise (see :mod:`stockade.sandbox.process`). A profile's limits are
enforced too: memory, pids and cpu through the slot's controller cgroups,
open files and file size through ``prlimit`` (see :mod:`stockade.sandbox.limits`).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, ClassVar

from stockade.sandbox.base import Availability, LaunchRequest, Sandbox
from stockade.sandbox.cgroup import SlotCgroup
from stockade.sandbox.handle import SandboxHandle
from stockade.sandbox.slot import SlotResources, with_profile_env

if TYPE_CHECKING:
    from stockade.spec.sandbox import SandboxProfile

__all__ = ["LocalSandbox"]

_slot_numbers = itertools.count(1)


class LocalSandbox(Sandbox):
    """Runs jobs as host processes in a slot cgroup when one can be made."""

    name: ClassVar[str] = "local"

    def __init__(
        self,
        slot: str | None = None,
        use_cgroup: bool = True,
        profile: SandboxProfile | None = None,
    ) -> None:
        self.slot = slot or f"slot{next(_slot_numbers)}"
        self.use_cgroup = use_cgroup
        self.profile = profile
        self._prlimit: list[str] = []
        limits = None
        if profile is not None:
            from stockade.sandbox.limits import ResourceLimits

            limits = ResourceLimits.from_spec(profile.limits)
            import shutil  # only with limits: exec -- true must not pay for it

            self._prlimit = limits.prlimit_argv(shutil.which("prlimit") or "prlimit")
        self.resources = SlotResources(self.slot, limits, use_cgroup)

    @property
    def cgroup(self) -> SlotCgroup | None:
        """The slot's cgroup v2 directory, if one could be made."""
        return self.resources.cgroup

    @classmethod
    def availability(cls) -> Availability:
        return Availability(usable=True)

    def setup(self) -> None:
        self.resources.setup()

    def launch(self, request: LaunchRequest) -> SandboxHandle:
        request = with_profile_env(request, self.profile)
        return self.resources.start([*self._prlimit, *request.argv], request)

    def cleanup(self) -> None:
        self.resources.cleanup()
