"""The ``chroot`` backend: a persistent root per slot, as build farms use.

``setup()`` builds the slot's root under ``/run/stockade/chroot/<pid>-<slot>``
from the profile's mount table (:mod:`stockade.sandbox.table`): a tmpfs for
the root itself, made ``MS_PRIVATE`` at once so nothing mounted below it
propagates to other mount namespaces; optionally the template directory
copied in; read-only binds of the system, the profile's binds and sized
tmpfs; a minimal ``/dev`` (device nodes on a small tmpfs) and an empty
``/proc``. All mounts are ``nosuid,nodev``: setuid binaries and file
capabilities do not work inside. The mounts are made with ``mount(2)`` by
stockade itself (root), in stockade's own mount namespace, so they show in
``/proc/self/mountinfo`` and ``cleanup()`` can verify they are gone.

Each launch binds the job's workspace and runtime directories into the root
(undone when the job ends), then runs util-linux ``unshare`` with fresh
mount, ipc and uts namespaces (and network unless ``network: host``), which
mounts a new ``/proc``, chroots into the root, changes to the working
directory and becomes the profile's user (``nobody`` by default) before it
execs the job. The pid namespace comes from stockade itself
(:func:`~stockade.sandbox.syscalls.children_in_new_pid_namespace`): the
job is pid 1 of a new namespace *and* stockade's direct child, so its exit
status is exact (``unshare --fork`` turns a SIGKILL into exit 1) and
everything it started dies with it.

``cleanup()`` unmounts in reverse with retries and a lazy fallback, checks
``/proc/self/mountinfo`` and raises :class:`~stockade.errors.CleanupError`
naming what stayed mounted. Roots left by a stockade process that died are
taken down by the next ``setup()``.

Not isolated: a job that may create user namespaces can leave a chroot
(this backend cannot load a seccomp filter; see ``docs/sandboxes.md``). Use
``bwrap`` for untrusted code.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from stockade.errors import CleanupError, MountError, SetupError
from stockade.sandbox import mounts, syscalls
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
from stockade.sandbox.limits import ResourceLimits
from stockade.sandbox.slot import SlotResources, with_profile_env
from stockade.sandbox.syscalls import children_in_new_pid_namespace
from stockade.sandbox.table import Entry, launch_binds, plan

if TYPE_CHECKING:
    from stockade.spec.sandbox import SandboxProfile

__all__ = ["BASE_DIR", "ChrootSandbox"]

BASE_DIR = "/run/stockade/chroot"
_ROOT_SIZE = 16 * 1024 * 1024
_DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9)}
_DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
              "stderr": "/proc/self/fd/2"}  # fmt: skip
_slot_numbers = itertools.count(1)


class ChrootSandbox(Sandbox):
    """A persistent root per slot; see the module docstring."""

    name: ClassVar[str] = "chroot"

    def __init__(
        self,
        profile: SandboxProfile | None = None,
        slot: str | None = None,
        base_dir: str = BASE_DIR,
    ) -> None:
        if profile is None:
            from stockade.spec.sandbox import SandboxProfile

            profile = SandboxProfile(backend="chroot")
        self.profile = profile
        self.slot = slot or f"chroot{next(_slot_numbers)}"
        self.base_dir = base_dir
        self.root = os.path.join(base_dir, f"{os.getpid()}-{self.slot}")
        limits = ResourceLimits.from_spec(profile.limits)
        self.resources = SlotResources(self.slot, limits)
        self._prlimit = limits.prlimit_argv(shutil.which("prlimit") or "/usr/bin/prlimit")
        self.identity: Identity | None = None
        #: Writable binds and workspaces lent to the job's user (sandbox.acl).
        self._lease: Lease | None = None
        self._entries: list[Entry] = []
        self.ready = False

    @classmethod
    def availability(cls) -> Availability:
        if os.geteuid() != 0:
            return Availability(
                False,
                "building a chroot needs root (mount, chroot)",
                "run stockade as root, or use the bwrap backend",
            )
        if shutil.which("unshare") is None:
            return Availability(
                False, "util-linux unshare is not installed", "apt-get install util-linux"
            )
        return Availability(True)

    # -- setup ---------------------------------------------------------------

    def setup(self) -> None:
        if self.ready:
            return
        usable = self.availability()
        if not usable.usable:
            raise SetupError(f"chroot backend unusable: {usable.reason}; fix: {usable.fix}")
        self.identity = resolve(self.profile.user)
        self._lend_binds(self.identity)
        prune_stale(self.base_dir)
        os.makedirs(self.root, exist_ok=True)
        try:
            self._entries = plan(self.profile)
            self._build(self._entries)
            self.resources.setup()
        except BaseException as exc:
            with contextlib.suppress(CleanupError):
                self._take_down()
            if isinstance(exc, OSError):
                raise SetupError(
                    f"cannot build the chroot at {self.root}: {exc.strerror or exc}"
                    f"{' (' + exc.filename + ')' if exc.filename else ''}"
                ) from exc
            raise
        self.ready = True

    def _build(self, entries: list[Entry]) -> None:
        root = self.root
        template = self.profile.template
        size = _ROOT_SIZE + (2 * _tree_size(template) if template else 0)
        mounts.tmpfs(root, size, mode=0o755)
        mounts.make_private(root)
        if template:
            shutil.copytree(template, root, symlinks=True, dirs_exist_ok=True)
        for entry in entries:
            self._mount(entry)
        self._make_dev()
        os.makedirs(self._inside("/proc"), exist_ok=True)
        if self.profile.workdir:
            os.makedirs(self._inside(self.profile.workdir), exist_ok=True)

    def _inside(self, path: str) -> str:
        return self.root + path

    def _mount(self, entry: Entry) -> None:
        target = self._inside(entry.target)
        if entry.kind == "symlink":
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.lexists(target):
                os.symlink(entry.source, target)
            return
        if entry.kind == "tmpfs":
            os.makedirs(target, exist_ok=True)
            mounts.tmpfs(target, entry.size, mode=entry.mode, readonly=entry.readonly)
            return
        _mount_point(target, os.path.isdir(entry.source))
        mounts.bind(entry.source, target, entry.readonly)

    def _make_dev(self) -> None:
        dev = self._inside("/dev")
        os.makedirs(dev, exist_ok=True)
        mounts.tmpfs(dev, 64 * 1024, mode=0o755, dev=True)
        for name, (major, minor) in {**_DEVICES, "tty": (5, 0)}.items():
            path = os.path.join(dev, name)
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            os.chmod(path, 0o666)
        for name, link in _DEV_LINKS.items():
            os.symlink(link, os.path.join(dev, name))
        os.mkdir(os.path.join(dev, "shm"))
        mounts.tmpfs(os.path.join(dev, "shm"), 64 * 1024 * 1024)

    # -- launch --------------------------------------------------------------

    def launch(self, request: LaunchRequest) -> SandboxHandle:
        if not self.ready:
            self.setup()
        assert self.identity is not None
        request = with_profile_env(request, self.profile)
        grant(request.runtime_dirs, self.identity)
        assert self._lease is not None
        give_workspace(request.workspace, self.identity, request.fresh_workspace, self._lease)
        bound: list[str] = []
        made: list[str] = []
        try:
            for entry in launch_binds(request, self._entries):
                target = self._inside(entry.target)
                made += _mount_point(target, True)
                if entry.kind == "tmpfs":  # a cover over the data directory
                    mounts.tmpfs(target, entry.size, mode=entry.mode)
                else:
                    mounts.bind(entry.source, target, readonly=False)
                bound.append(target)
            return self.resources.start(
                self._argv(request),
                request,
                contexts=[children_in_new_pid_namespace()],
                teardown=lambda: _unbind(bound, made),
            )
        except BaseException:
            _unbind(bound, made)
            raise

    def _argv(self, request: LaunchRequest) -> list[str]:
        ident = self.identity
        assert ident is not None
        argv = [*self._prlimit, shutil.which("unshare") or "/usr/bin/unshare"]
        argv += ["--mount", "--ipc", "--uts"]
        if self.profile.network != "host":
            argv.append("--net")
        argv += ["--mount-proc=/proc", f"--root={self.root}"]
        argv.append(f"--wd={self.profile.workdir or request.cwd}")
        if ident.switches:
            argv += [f"--setgid={ident.gid}", f"--setuid={ident.uid}"]
        return [*argv, "--", *request.argv]

    # -- cleanup -------------------------------------------------------------

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
        errors: list[CleanupError] = []
        try:
            self.resources.cleanup()
        except CleanupError as exc:
            errors.append(exc)
        try:
            self._take_down()
        except CleanupError as exc:
            errors.append(exc)
        self.ready = False
        if errors:
            raise CleanupError(
                "; ".join(e.message for e in errors), [p for e in errors for p in e.remaining]
            ) from errors[0]

    def _take_down(self) -> None:
        """Unmount everything under the root (verified) and remove its directory.

        ``rmdir``, never a recursive delete: should anything still be mounted
        below, a recursive delete would reach into the host's files."""
        mounts.unmount_tree(self.root)
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(self.root)


def _mount_point(target: str, directory: bool) -> list[str]:
    """Make ``target`` exist (a directory, or an empty file for a file bind);
    return the directories this created, outermost first."""
    made: list[str] = []
    path = Path(target)
    while not os.path.lexists(path):
        made.insert(0, str(path))
        path = path.parent
    try:
        if directory:
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            Path(target).touch(exist_ok=True)
    except OSError as exc:
        raise MountError("mkdir", target, reason=exc.strerror or str(exc)) from exc
    return made if directory else made[:-1]


def _unbind(bound: list[str], made: list[str]) -> None:
    """Undo one launch's binds and the mount points made for them.

    One ``umount`` each (the job's processes are gone, nothing holds them);
    only if that fails does the slower, verified :func:`mounts.unmount_tree` run."""
    for target in reversed(bound):
        try:
            syscalls.umount(target, syscalls.UMOUNT_NOFOLLOW)
        except OSError:
            with contextlib.suppress(CleanupError):
                mounts.unmount_tree(target, attempts=4)
    for path in reversed(made):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _tree_size(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def prune_stale(base_dir: str) -> list[str]:
    """Take down roots whose stockade process is gone; return their paths."""
    pruned = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(base_dir):
            owner = name.split("-", 1)[0]
            if not owner.isdigit() or os.path.exists(f"/proc/{owner}"):
                continue
            path = os.path.join(base_dir, name)
            with contextlib.suppress(CleanupError, OSError):
                mounts.unmount_tree(path)
                os.rmdir(path)
                pruned.append(path)
    return pruned
