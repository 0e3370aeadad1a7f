"""Slots: a worker's units of concurrency, each owning one sandbox at a time.

A slot's sandbox is set up once and kept from job to job: setup happens
once per slot and profile, not per job. Which sandbox a slot holds follows
the jobs it runs: a job whose task declares a sandbox profile runs in that
profile (the slot is set up anew in it when its current sandbox is of
another, and keeps it for the next job of the same profile); a job that
declares none runs in the worker's default sandbox, made by the worker's
factory, so the backends and their registry plug in without the engine
knowing them; the default factory gives the ``local`` backend.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from stockade.errors import SandboxError
from stockade.sandbox.base import Sandbox

if TYPE_CHECKING:
    from stockade.spec.sandbox import SandboxProfile

__all__ = ["ProfileFactory", "SandboxFactory", "Slot", "local_sandbox", "profile_key"]

log = logging.getLogger("stockade.worker")

#: Makes the default sandbox of slot number N (counting from 1).
SandboxFactory = Callable[[int], Sandbox]
#: Makes slot N's sandbox for a profile a job declares.
ProfileFactory = Callable[[int, "SandboxProfile"], Sandbox]


def local_sandbox(index: int) -> Sandbox:
    """The default slot sandbox: the ``local`` backend, one slot cgroup each."""
    from stockade.sandbox.local import LocalSandbox

    return LocalSandbox(slot=f"w{os.getpid()}s{index}")


def declared_sandbox(index: int, profile: SandboxProfile) -> Sandbox:
    """Slot ``index``'s sandbox in ``profile``, by the backend registry."""
    from stockade.sandbox.registry import create

    return create(profile, slot=f"w{os.getpid()}s{index}p")


def profile_key(profile: SandboxProfile | None) -> str | None:
    """What tells two profiles apart: their JSON text (``None``: the default)."""
    if profile is None:
        return None
    return json.dumps(profile.model_dump(mode="json"), sort_keys=True)


class Slot:
    """Slot ``index`` and its sandbox; :meth:`setup` before use, :meth:`cleanup` after."""

    def __init__(
        self,
        index: int,
        factory: SandboxFactory = local_sandbox,
        profiles: ProfileFactory = declared_sandbox,
    ) -> None:
        self.index = index
        self._factory = factory
        self._profiles = profiles
        self.sandbox: Sandbox | None = None
        #: The profile the sandbox is set up in (``None``: the worker's default).
        self.profile: SandboxProfile | None = None
        #: :func:`profile_key` of :attr:`profile`, compared at every claim.
        self.key: str | None = None

    @property
    def ready(self) -> bool:
        return self.sandbox is not None

    def fits(self, key: str | None) -> bool:
        """Whether the slot's sandbox is the one a job of profile ``key`` runs in."""
        return self.key == key

    def runs_as_declared(self, profile: SandboxProfile | None) -> bool:
        """Whether a job declaring ``profile`` may run in the slot's sandbox now:
        the same profile, in a sandbox of that profile's backend (any sandbox
        for a job that declares none). Checked again just before a launch."""
        if profile is None:
            return self.sandbox is not None
        sandbox = self.sandbox
        return (
            sandbox is not None
            and getattr(sandbox, "name", None) == profile.backend
            and self.key == profile_key(profile)
        )

    def setup(self, profile: SandboxProfile | None = None, *, keep: bool = True) -> None:
        """Make and set up the slot's sandbox in ``profile`` (``None``: the
        default), or with ``keep`` the profile it has; raises
        :class:`SandboxError` if it cannot."""
        if keep:
            profile = self.profile
        if self.sandbox is not None:
            if profile_key(profile) == self.key:
                return
            self.cleanup()
        if profile is None:
            sandbox = self._factory(self.index)
        else:
            sandbox = self._profiles(self.index, profile)
        sandbox.setup()
        self.sandbox, self.profile, self.key = sandbox, profile, profile_key(profile)

    def cleanup(self) -> None:
        """Tear the sandbox down; what it left behind is logged, never raised.
        The slot keeps its profile, for :meth:`setup` to make again."""
        sandbox, self.sandbox = self.sandbox, None
        if sandbox is None:
            return
        try:
            sandbox.cleanup()
        except SandboxError as exc:
            log.warning("slot %d: sandbox cleanup: %s", self.index, exc.message)

    def reset(self) -> None:
        """Clean up and set up again in the same profile (after an
        infrastructure error in the slot)."""
        self.cleanup()
        self.setup()
