"""SlotResources: the cgroups one slot owns, and starting a job inside them.

Every backend that starts host processes has the same needs per slot: a
cgroup v2 directory for kill-all (:class:`~stockade.sandbox.cgroup.SlotCgroup`),
controller cgroups for its limits (:class:`~stockade.sandbox.limits.LimitCgroups`),
and a launch that has the job born inside both and reports OOM kills. This
class does that once for all of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stockade.errors import CleanupError, LaunchError
from stockade.sandbox.base import LaunchRequest
from stockade.sandbox.cgroup import SlotCgroup
from stockade.sandbox.handle import SandboxHandle
from stockade.sandbox.process import spawn

if TYPE_CHECKING:
    from stockade.sandbox.limits import LimitCgroups, ResourceLimits
    from stockade.spec.sandbox import SandboxProfile

__all__ = ["SlotResources", "with_profile_env"]


def with_profile_env(request: LaunchRequest, profile: SandboxProfile | None) -> LaunchRequest:
    """``request`` with the profile's ``pass_env`` (from stockade's environment,
    unless the job sets them itself) and ``env`` (always) laid over its environment."""
    if profile is None or not (profile.env or profile.pass_env):
        return request
    env = dict(request.env)
    for name in profile.pass_env:
        if name in os.environ:
            env.setdefault(name, os.environ[name])
    env.update(profile.env)
    return dataclasses.replace(request, env=env)


class SlotResources:
    """Kill-all and limit cgroups of one slot. ``setup`` makes them, ``cleanup`` removes them.

    ``limits`` is ``None`` for a slot without limits: then :mod:`stockade.sandbox.limits`
    is never imported (the plain ``stockade exec -- CMD`` start-up does not pay for it).
    """

    def __init__(self, label: str, limits: ResourceLimits | None, use_cgroup: bool = True) -> None:
        self.label = label
        self.limits = limits
        self.use_cgroup = use_cgroup
        self.cgroup: SlotCgroup | None = None
        self.limit_cgroups: LimitCgroups | None = None

    def setup(self) -> None:
        """Make the slot cgroup (if the host allows) and the limit cgroups (if any limit).

        Raises :class:`~stockade.errors.SetupError` when a limit cannot be
        enforced, after removing what it made.
        """
        if self.use_cgroup and self.cgroup is None:
            self.cgroup = SlotCgroup.create(self.label)
        if self.limits is not None and self.limits.controllers() and self.limit_cgroups is None:
            from stockade.sandbox.limits import LimitCgroups

            v2 = self.cgroup.path if self.cgroup is not None else None
            try:
                self.limit_cgroups = LimitCgroups.create(self.label, self.limits, v2)
            except BaseException:
                with contextlib.suppress(CleanupError):
                    self.cleanup()
                raise

    def start(
        self,
        argv: list[str],
        request: LaunchRequest,
        *,
        pass_fds: tuple[int, ...] = (),
        contexts: Sequence[contextlib.AbstractContextManager[object]] = (),
        **handle_options: Any,
    ) -> SandboxHandle:
        """Spawn ``argv`` (already wrapped by the backend) born inside the slot's cgroups."""
        limits = self.limit_cgroups
        before = limits.oom_kills() if limits is not None else 0
        peaks_before = limits.reset_peaks() if limits is not None else {}
        around = [limits.spawning()] if limits is not None else []
        try:
            inner = spawn(argv, request, self.cgroup, pass_fds, contexts=[*around, *contexts])
        except LaunchError as exc:
            pids = self.limits.pids if self.limits is not None else None
            if pids is not None and isinstance(exc.__cause__, BlockingIOError):
                raise LaunchError(
                    f"{exc.message} (the pids limit {pids} leaves no room to "
                    "start the job; raise limits.pids)"
                ) from exc.__cause__
            raise
        except OSError as exc:
            raise LaunchError(
                f"cannot place the job in its slot's cgroups: {exc.strerror or exc}"
            ) from exc
        if limits is not None and limits.limits.memory is not None:
            handle_options.setdefault("oom_kills", limits.oom_kills)
            handle_options.setdefault("oom_before", before)
        if limits is not None:
            handle_options.setdefault("peaks", lambda: limits.peaks(peaks_before))
        return SandboxHandle(inner, **handle_options)

    def cleanup(self) -> None:
        """Remove the cgroups (the slot's first: removing it kills what is left);
        raise :class:`CleanupError` naming any that stayed."""
        errors: list[CleanupError] = []
        if self.cgroup is not None:
            try:
                self.cgroup.remove()
            except OSError as exc:
                errors.append(
                    CleanupError(
                        f"cannot remove slot cgroup {self.cgroup.path}: {exc.strerror or exc}",
                        [str(self.cgroup.path)],
                    )
                )
            self.cgroup = None
        if self.limit_cgroups is not None:
            try:
                self.limit_cgroups.remove()
            except CleanupError as exc:
                errors.append(exc)
            self.limit_cgroups = None
        if errors:
            raise CleanupError(
                "; ".join(e.message for e in errors),
                remaining=[path for e in errors for path in e.remaining],
            ) from errors[0]
