"""The ``oci`` backend: each launch is a container run by an OCI runtime.

``setup()`` makes the slot's bundle, ``/run/stockade/oci/<pid>-<slot>``,
whose ``rootfs`` is an empty directory (plus the table's symlinks). Each
launch writes ``config.json`` (:mod:`stockade.sandbox.oci_spec`: the
profile's mounts, the workspace and runtime directories, user, limits,
seccomp) and runs ``runc run`` in the *foreground*: the runtime's stdio are
the runner's pipes, so output streams as it is written (``--detach`` with
piped stdio hangs). runc 1.1 is preferred; crun 1.8 refuses hosts with the
hybrid cgroup layout, so it is used only where runc is missing and the
layout is not hybrid.

The container's cgroup path is relative, so it is created below the
cgroups runc is born in: below the slot's cgroup2 directory, whose
``cgroup.kill`` therefore ends runc and the whole container at once, and
below stockade's own v1 cgroups. runc keeps its state in
``/run/stockade/runc``. A container that exits on its own is removed by
runc; with a memory limit it is kept (``--keep``) just long enough to read
its ``oom_kill`` counter. Whatever is left after the job — a container that
was killed, or kept — is removed with ``runc delete --force``, so a killed
job leaves no container, cgroup or state directory behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from stockade.errors import CleanupError, SetupError
from stockade.sandbox import mounts, oci_spec, seccomp
from stockade.sandbox.acl import Lease
from stockade.sandbox.base import Availability, LaunchRequest, Sandbox
from stockade.sandbox.handle import SandboxHandle
from stockade.sandbox.identity import (
    Identity,
    give_workspace,
    grant,
    lease,
    resolve,
    writable_binds,
)
from stockade.sandbox.limits import ResourceLimits, oom_kill_count, v1_hierarchies
from stockade.sandbox.slot import SlotResources, with_profile_env
from stockade.sandbox.table import Entry, launch_binds, plan

if TYPE_CHECKING:
    from stockade.spec.sandbox import SandboxProfile

__all__ = ["BUNDLE_DIR", "STATE_DIR", "OciSandbox", "find_runtime"]

BUNDLE_DIR = "/run/stockade/oci"
STATE_DIR = "/run/stockade/runc"
_slot_numbers = itertools.count(1)


def _hybrid_cgroups() -> bool:
    return bool(v1_hierarchies()) and Path("/sys/fs/cgroup/unified").is_dir()


def find_runtime() -> tuple[str | None, str]:
    """(path of the runtime to use, or None; why not)."""
    runc = shutil.which("runc")
    if runc:
        return runc, ""
    crun = shutil.which("crun")
    if crun and not _hybrid_cgroups():
        return crun, ""
    if crun:
        return None, "only crun is installed, and crun refuses this host's hybrid cgroup layout"
    return None, "no OCI runtime (runc or crun) is installed"


class OciSandbox(Sandbox):
    """Containers under runc; see the module docstring."""

    name: ClassVar[str] = "oci"

    def __init__(
        self,
        profile: SandboxProfile | None = None,
        slot: str | None = None,
        state_dir: str = STATE_DIR,
    ) -> None:
        if profile is None:
            from stockade.spec.sandbox import SandboxProfile

            profile = SandboxProfile(backend="oci")
        self.profile = profile
        self.slot = slot or f"oci{next(_slot_numbers)}"
        self.state_dir = state_dir
        self.bundle = os.path.join(BUNDLE_DIR, f"{os.getpid()}-{self.slot}")
        self.prefix = f"stockade-{os.getpid()}-{self.slot}-"
        self.limits = ResourceLimits.from_spec(profile.limits)
        # Limits are runc's to enforce (config.json); the slot cgroup gives kill-all.
        self.resources = SlotResources(self.slot, None)
        self.runtime: str | None = None
        self.identity: Identity | None = None
        #: Writable binds and workspaces lent to the job's user (sandbox.acl).
        self._lease: Lease | None = None
        self._entries: list[Entry] = []
        self._seccomp: dict[str, object] | None = None
        self._launches = itertools.count(1)

    @classmethod
    def availability(cls) -> Availability:
        if os.geteuid() != 0:
            return Availability(
                False,
                "stockade runs OCI runtimes as root only (rootless runc is not supported yet)",
                "run stockade as root, or use the bwrap backend",
            )
        runtime, why = find_runtime()
        if runtime is None:
            return Availability(False, why, "install runc: apt-get install runc")
        return Availability(True)

    def setup(self) -> None:
        if self.runtime is not None:
            return
        usable = self.availability()
        if not usable.usable:
            raise SetupError(f"oci backend unusable: {usable.reason}; fix: {usable.fix}")
        runtime, _ = find_runtime()
        self.identity = resolve(self.profile.user)
        self._lend_binds(self.identity)
        self._entries = plan(self.profile)
        want = self.profile.seccomp
        self._seccomp = seccomp.oci_rules() if want is not False and seccomp.supported() else None
        self._prune_stale()
        rootfs = os.path.join(self.bundle, "rootfs")
        try:
            os.makedirs(rootfs, exist_ok=True)
            for entry in self._entries:
                if entry.kind == "symlink" and not os.path.lexists(rootfs + entry.target):
                    os.symlink(entry.source, rootfs + entry.target)
            self.resources.setup()
        except OSError as exc:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.bundle)
            raise SetupError(f"cannot make the OCI bundle {self.bundle}: {exc}") from exc
        self.runtime = runtime

    def launch(self, request: LaunchRequest) -> SandboxHandle:
        if self.runtime is None:
            self.setup()
        assert self.runtime is not None and self.identity is not None
        request = with_profile_env(request, self.profile)
        grant(request.runtime_dirs, self.identity)
        assert self._lease is not None
        give_workspace(request.workspace, self.identity, request.fresh_workspace, self._lease)
        cid = f"{self.prefix}{next(self._launches)}"
        spec = oci_spec.config(
            args=request.argv,
            env=request.env,
            cwd=self.profile.workdir or request.cwd,
            identity=self.identity,
            entries=[*self._entries, *launch_binds(request, self._entries)],
            limits=self.limits,
            network=self.profile.network == "host",
            cgroups_path=cid,
            seccomp=self._seccomp,
        )
        with open(os.path.join(self.bundle, "config.json"), "w", encoding="utf-8") as fh:
            json.dump(spec, fh)
        keep = self.limits.memory is not None
        argv = [self.runtime, "--root", self.state_dir, "run", "--bundle", self.bundle]
        argv += ["--keep", cid] if keep else [cid]
        runtime_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        launch = dataclasses.replace(request, env=runtime_env, cwd=self.bundle)
        return self.resources.start(
            argv,
            launch,
            signal_codes=True,
            oom_kills=(lambda: self._container_oom(cid)) if keep else None,
            signaller=lambda signum: self._signal_container(cid, signum),
            async_teardown=lambda: self._delete_async(cid),
            teardown=lambda: self._delete(cid),
        )

    # -- the container's cgroups and state ------------------------------------

    def _container_oom(self, cid: str) -> int:
        memory = v1_hierarchies().get("memory")
        if memory is not None:
            mount, own = memory
            return oom_kill_count(mount / own.lstrip("/") / cid / "memory.oom_control")
        cgroup = self.resources.cgroup
        return oom_kill_count(cgroup.path / cid / "memory.events") if cgroup else 0

    def _signal_container(self, cid: str, signum: int) -> None:
        """The slot cgroup holds runc; the container's processes are one level down."""
        cgroup = self.resources.cgroup
        if cgroup is None:
            return
        with contextlib.suppress(OSError):
            for pid in (cgroup.path / cid / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signum)

    def _exists(self, cid: str) -> bool:
        return os.path.exists(os.path.join(self.state_dir, cid))

    def _delete_argv(self, cid: str) -> list[str]:
        assert self.runtime is not None
        return [self.runtime, "--root", self.state_dir, "delete", "--force", cid]

    async def _delete_async(self, cid: str) -> None:
        if self.runtime is None or not self._exists(cid):
            return
        proc = await asyncio.create_subprocess_exec(
            *self._delete_argv(cid), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        await proc.wait()

    def _delete(self, cid: str) -> None:
        if self.runtime is None or not self._exists(cid):
            return
        subprocess.run(self._delete_argv(cid), capture_output=True, check=False)

    def _containers(self, prefix: str) -> list[str]:
        with contextlib.suppress(FileNotFoundError):
            return sorted(n for n in os.listdir(self.state_dir) if n.startswith(prefix))
        return []

    def _prune_stale(self) -> None:
        """Delete containers (and bundles) of stockade processes that are gone."""
        runtime, _ = find_runtime()
        for cid in self._containers("stockade-"):
            owner = cid.split("-")[1]
            if owner.isdigit() and not os.path.exists(f"/proc/{owner}") and runtime:
                delete = [runtime, "--root", self.state_dir, "delete", "--force", cid]
                subprocess.run(delete, capture_output=True, check=False)
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(BUNDLE_DIR):
                owner = name.split("-", 1)[0]
                path = os.path.join(BUNDLE_DIR, name)
                dead = owner.isdigit() and not os.path.exists(f"/proc/{owner}")
                if dead and not mounts.mounts_under(path):
                    shutil.rmtree(path, ignore_errors=True)

    def _lend_binds(self, ident: Identity) -> None:
        if self._lease is not None:
            self._lease.release()
        self._lease = lease(ident)
        for path in writable_binds(self.profile):
            self._lease.add(path)

    def cleanup(self) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        errors: list[str] = []
        if self.runtime is not None:
            for cid in self._containers(self.prefix):
                self._delete(cid)
            errors += [f"container {c}" for c in self._containers(self.prefix)]
        try:
            self.resources.cleanup()
        except CleanupError as exc:
            errors += exc.remaining
        if os.path.isdir(self.bundle) and not mounts.mounts_under(self.bundle):
            shutil.rmtree(self.bundle, ignore_errors=True)
        self.runtime = None
        if errors:
            raise CleanupError(
                f"the oci sandbox left {', '.join(errors)}; remove containers with "
                f"`runc --root {self.state_dir} delete --force ID`",
                remaining=errors,
            )
