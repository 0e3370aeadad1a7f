"""Who a sandboxed job runs as.

A profile's ``user`` is a name or ``uid[:gid]``. Unset, it is the
unprivileged ``nobody`` (65534) when stockade runs as root — a job in a
sandbox never runs as root by accident — and stockade's own user otherwise
(an unprivileged process cannot become anyone else).
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stockade.errors import SetupError
from stockade.sandbox.acl import Lease

if TYPE_CHECKING:
    from stockade.spec.sandbox import SandboxProfile

__all__ = ["NOBODY", "Identity", "give_workspace", "grant", "lease", "resolve", "writable_binds"]

NOBODY = 65534


@dataclass(frozen=True)
class Identity:
    """A uid and gid to run a job as."""

    uid: int
    gid: int

    @property
    def switches(self) -> bool:
        """Whether running as this identity means changing user."""
        return self.uid != os.geteuid() or self.gid != os.getegid()

    def __str__(self) -> str:
        return f"{self.uid}:{self.gid}"


def _nobody() -> Identity:
    try:
        uid = pwd.getpwnam("nobody").pw_uid
    except KeyError:
        uid = NOBODY
    for name in ("nogroup", "nobody"):
        try:
            return Identity(uid, grp.getgrnam(name).gr_gid)
        except KeyError:
            continue
    return Identity(uid, NOBODY)


def _uid(text: str) -> tuple[int, int | None]:
    if text.isdigit():
        return int(text), None
    try:
        entry = pwd.getpwnam(text)
    except KeyError:
        raise SetupError(f"user {text!r} does not exist on this host; give a uid instead") from None
    return entry.pw_uid, entry.pw_gid


def _gid(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise SetupError(f"group {text!r} does not exist on this host; give a gid") from None


def resolve(user: str | None) -> Identity:
    """The identity for a profile's ``user`` (see the module docstring)."""
    if user is None:
        return _nobody() if os.geteuid() == 0 else Identity(os.geteuid(), os.getegid())
    name, _, group = user.strip().partition(":")
    uid, primary = _uid(name)
    gid = _gid(group) if group else (primary if primary is not None else uid)
    ident = Identity(uid, gid)
    if ident.switches and os.geteuid() != 0:
        raise SetupError(
            f"cannot run jobs as user {user!r}: stockade runs as uid {os.geteuid()} and only "
            "root can switch users; remove user: from the profile or run stockade as root"
        )
    return ident


def grant(paths: Iterable[str], ident: Identity) -> None:
    """Give ``ident`` the attempt's runtime directories (input, output and state
    files): stockade made them for this job alone, and the job must write them."""
    if not ident.switches:
        return
    for top in paths:
        for dirpath, _dirs, files in os.walk(top):
            os.chown(dirpath, ident.uid, ident.gid)
            for name in files:
                os.chown(os.path.join(dirpath, name), ident.uid, ident.gid, follow_symlinks=False)


def lease(ident: Identity) -> Lease:
    """An empty :class:`~stockade.sandbox.acl.Lease` for ``ident``: directories
    added to it become writable for the job's user while the slot holds them.
    Only a root-run stockade that switches user lends anything; otherwise the
    job is stockade's own user and its writes succeed or fail as stockade's."""
    return _NoLease(ident.uid, ident.gid) if not _lends(ident) else Lease(ident.uid, ident.gid)


def _lends(ident: Identity) -> bool:
    return os.geteuid() == 0 and ident.switches


class _NoLease(Lease):
    def add(self, path: str) -> bool:
        return True


def writable_binds(profile: SandboxProfile) -> list[str]:
    """Host directories the profile binds read-write (``readonly: false``)."""
    return [
        m.source
        for m in profile.mounts
        if m.type == "bind" and not m.readonly and m.source and os.path.isdir(m.source)
    ]


def give_workspace(path: str, ident: Identity, fresh: bool, held: Lease) -> None:
    """Make the job's workspace writable for ``ident``: one stockade made for
    this attempt is given to it (owner changed, as the runtime directories
    are); any other is lent through ``held`` (an ACL entry on the directory)."""
    if fresh:
        grant([path], ident)
    else:
        held.add(path)
