"""The ``bwrap`` backend: bubblewrap per launch, the default for untrusted jobs.

Each launch runs ``bwrap`` with new pid, ipc, uts and cgroup namespaces (and
network, unless the profile says ``network: host``), the profile's mount
table (see :mod:`stockade.sandbox.table`) on a fresh root, a new ``/proc``,
a minimal ``/dev``, ``--new-session`` (no terminal to type into),
``--die-with-parent`` and all capabilities dropped, plus stockade's seccomp
filter (:mod:`stockade.sandbox.seccomp`) unless the profile turns it off.
The environment is exactly the request's: nothing of stockade's leaks in,
and stockade's data directory is covered where a bind would expose it.

Running as root, bwrap works in its privileged mode (no user namespace), so
it can bind any source the profile names. The job then must not stay root:
bubblewrap's ``--uid`` in a user namespace still maps to host uid 0, and a
root job that keeps a capability can remount a read-only bind writable.
So bwrap keeps only ``CAP_SETUID``/``CAP_SETGID`` and starts the job through
``setpriv`` inside the sandbox, which becomes the profile's user (``nobody``
by default), clears groups, inheritable capabilities and sets
``no_new_privs``: the job is a real unprivileged host uid with no
capabilities at all. Run as another user, stockade lets bwrap make a user
namespace (``--unshare-user --disable-userns``) and the job keeps that user.
"""

from __future__ import annotations

import itertools
import os
import shutil
from typing import TYPE_CHECKING, ClassVar

from stockade.errors import SetupError
from stockade.sandbox import seccomp
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
from stockade.sandbox.table import Entry, launch_binds, plan

if TYPE_CHECKING:
    from stockade.spec.sandbox import SandboxProfile

__all__ = ["BwrapSandbox"]

_slot_numbers = itertools.count(1)
HOSTNAME = "stockade"


def _userns_allowed() -> bool:
    """Whether an unprivileged process may create a user namespace here."""
    for path, off in (
        ("/proc/sys/kernel/unprivileged_userns_clone", "0"),
        ("/proc/sys/user/max_user_namespaces", "0"),
    ):
        try:
            with open(path, encoding="ascii") as fh:
                if fh.read().strip() == off:
                    return False
        except OSError:
            continue
    return True


class BwrapSandbox(Sandbox):
    """bubblewrap per launch; see the module docstring."""

    name: ClassVar[str] = "bwrap"

    def __init__(self, profile: SandboxProfile | None = None, slot: str | None = None) -> None:
        if profile is None:
            from stockade.spec.sandbox import SandboxProfile

            profile = SandboxProfile(backend="bwrap")
        self.profile = profile
        self.slot = slot or f"bwrap{next(_slot_numbers)}"
        limits = ResourceLimits.from_spec(profile.limits)
        self.resources = SlotResources(self.slot, limits)
        self._prlimit = limits.prlimit_argv(shutil.which("prlimit") or "/usr/bin/prlimit")
        self.identity: Identity | None = None
        #: Writable binds and workspaces lent to the job's user (sandbox.acl).
        self._lease: Lease | None = None
        self._args: list[str] = []
        self._as_user: list[str] = []
        self._filter: bytes | None = None
        self._entries: list[Entry] = []

    @classmethod
    def availability(cls) -> Availability:
        if shutil.which("bwrap") is None:
            return Availability(
                False,
                "bubblewrap (bwrap) is not installed",
                "install it: apt-get install bubblewrap (Debian, Ubuntu) or "
                "dnf install bubblewrap (Fedora)",
            )
        if os.geteuid() == 0 and shutil.which("setpriv") is None:
            return Availability(
                False,
                "setpriv is missing: it starts root-run jobs as an unprivileged user",
                "install util-linux (apt-get install util-linux)",
            )
        if os.geteuid() != 0 and not _userns_allowed():
            return Availability(
                False,
                "unprivileged user namespaces are disabled on this host",
                "sysctl -w kernel.unprivileged_userns_clone=1 (and user.max_user_namespaces > 0), "
                "or run stockade as root",
            )
        return Availability(True)

    def setup(self) -> None:
        usable = self.availability()
        if not usable.usable:
            raise SetupError(f"bwrap backend unusable: {usable.reason}; fix: {usable.fix}")
        self.identity = resolve(self.profile.user)
        self._lend_binds(self.identity)
        entries = self._entries = plan(self.profile)
        self._args = self._static_args(entries, self.identity)
        self._as_user = self._switch_user(entries, self.identity)
        want_filter = self.profile.seccomp
        if want_filter and not seccomp.supported():
            raise SetupError(
                "seccomp: true, but stockade has no filter for this CPU architecture; "
                "set seccomp: false"
            )
        self._filter = (
            seccomp.program() if want_filter is not False and seccomp.supported() else None
        )
        self.resources.setup()

    def _static_args(self, entries: list[Entry], ident: Identity) -> list[str]:
        """bwrap options that are the same for every launch of this slot."""
        root = os.geteuid() == 0
        args = [shutil.which("bwrap") or "bwrap"]
        if not root:
            args += ["--unshare-user", "--disable-userns"]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if self.profile.network != "host":
            args.append("--unshare-net")
        args += ["--die-with-parent", "--new-session", "--hostname", HOSTNAME]
        args += ["--cap-drop", "ALL"]
        if root and ident.switches:
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        args += ["--proc", "/proc", "--dev", "/dev"]
        for entry in entries:
            args += _entry_args(entry)
        return args

    def _switch_user(self, entries: list[Entry], ident: Identity) -> list[str]:
        """The ``setpriv`` prefix that drops a root-run job to ``ident`` inside the sandbox."""
        if os.geteuid() != 0 or not ident.switches:
            return []
        setpriv = os.path.realpath(shutil.which("setpriv") or "/usr/bin/setpriv")
        visible = any(
            e.kind == "bind" and (setpriv == e.target or setpriv.startswith(e.target + "/"))
            for e in entries
        )
        if not visible:
            raise SetupError(
                f"the job must become user {ident} through {setpriv}, which this profile does "
                "not mount: keep system: true or bind /usr"
            )
        return [
            setpriv, f"--reuid={ident.uid}", f"--regid={ident.gid}", "--clear-groups",
            "--inh-caps=-all", "--no-new-privs", "--",
        ]  # fmt: skip

    def launch(self, request: LaunchRequest) -> SandboxHandle:
        if self.identity is None:
            self.setup()
        assert self.identity is not None
        request = with_profile_env(request, self.profile)
        grant(request.runtime_dirs, self.identity)
        assert self._lease is not None
        give_workspace(request.workspace, self.identity, request.fresh_workspace, self._lease)
        args = [*self._prlimit, *self._args]
        binds = launch_binds(request, self._entries)
        for entry in binds:
            args += _entry_args(entry)
        for parent in _made_parents(binds, [*self._entries, *binds]):
            args += ["--chmod", "0755", parent]
        cwd = self.profile.workdir or request.cwd
        if self.profile.workdir:
            args += ["--dir", cwd]
        args += ["--chdir", cwd]
        fds: tuple[int, ...] = ()
        if self._filter is not None:
            fd = os.memfd_create("stockade-seccomp", os.MFD_CLOEXEC)
            os.write(fd, self._filter)
            os.lseek(fd, 0, os.SEEK_SET)
            fds = (fd,)
            args += ["--seccomp", str(fd)]
        args += ["--", *self._as_user, *request.argv]
        try:
            # bwrap exits on its pid-namespace init's report without reaping
            # it: its rusage is bwrap's own, not the job's.
            return self.resources.start(
                args, request, pass_fds=fds, signal_codes=True, rusage_is_the_jobs=False
            )
        finally:
            for fd in fds:
                os.close(fd)

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
        self.identity = None
        self.resources.cleanup()


def _made_parents(binds: list[Entry], entries: list[Entry]) -> list[str]:
    """Directories bwrap creates on the way to ``binds`` in memory (not on the host).

    bwrap gives a directory it creates for a mount point the mode of the same
    path on the host, so a workspace below a private ``0700`` directory would
    be out of the unprivileged job's reach. These directories exist only in
    the sandbox and hold nothing but the binds, so they are opened up to
    ``0755``; directories that are host binds keep the host's mode."""
    found: list[str] = []
    for bind in binds:
        parent = os.path.dirname(bind.target)
        while parent != "/":
            owner = max(
                (e for e in entries if parent == e.target or parent.startswith(e.target + "/")),
                key=lambda e: len(e.target),
                default=None,
            )
            if owner is not None and (owner.kind != "tmpfs" or owner.target == parent):
                break
            if parent not in found:
                found.append(parent)
            parent = os.path.dirname(parent)
    return sorted(found, key=len)


def _entry_args(entry: Entry) -> list[str]:
    """bwrap options for one planned mount."""
    if entry.kind == "symlink":
        return ["--symlink", entry.source, entry.target]
    if entry.kind == "bind":
        return ["--ro-bind" if entry.readonly else "--bind", entry.source, entry.target]
    args = ["--size", str(entry.size)] if entry.size else []
    args += ["--perms", f"{entry.mode:o}", "--tmpfs", entry.target]
    if entry.readonly:
        args += ["--remount-ro", entry.target]
    return args
