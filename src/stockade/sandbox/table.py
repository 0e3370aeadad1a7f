"""The mount table of an isolating sandbox, planned from its profile.

bwrap, chroot and oci all build the same view of the file system; only the
mechanism differs (bwrap arguments, mount calls, ``config.json``). The plan:

1. the host's system directories, read-only (``system: true``); where the
   host has a symlink (``/bin -> usr/bin`` on merged-/usr systems) the
   sandbox gets the same symlink;
2. the profile's mounts (an entry with the same target as a system one
   replaces it);
3. a tmpfs on ``/tmp`` unless the profile mounts something there;
4. per launch: the job's workspace and runtime directories, read-write, at
   the same paths as on the host (the :mod:`stockade.sandbox.base` contract);
5. per launch: an empty tmpfs that only root may list (mode 0711) wherever a
   bind would show a hidden directory (stockade's data directory), then the
   runtime directories inside it bound again, so a job never sees the store,
   the logs or another job's files.

Entries are ordered parents before children (a stable sort on depth), so a
bind below a tmpfs lands on the tmpfs and not under it. ``/proc`` and a
minimal ``/dev`` are each backend's own business.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from stockade.errors import LaunchError
from stockade.sandbox.base import LaunchRequest

if TYPE_CHECKING:
    from stockade.spec.sandbox import SandboxProfile

__all__ = [
    "DEFAULT_TMP_SIZE", "HIDE_MODE", "SYSTEM_PATHS", "Entry", "launch_binds", "plan",
]  # fmt: skip

SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
#: Size of the default ``/tmp`` tmpfs (memory is only used as files are written).
DEFAULT_TMP_SIZE = 256 * 1024 * 1024
#: The tmpfs over a hidden directory: traversable (to runtime directories
#: inside it), not listable, writable by nobody but root, and small.
HIDE_MODE = 0o711
HIDE_SIZE = 64 * 1024
_FORBIDDEN_RW = ("/", "/proc", "/dev", "/sys", *SYSTEM_PATHS)


@dataclass(frozen=True)
class Entry:
    """One planned mount: a bind (``source`` is the host path), a tmpfs, or a
    symlink (``source`` is the link text)."""

    kind: Literal["bind", "tmpfs", "symlink"]
    target: str
    source: str = ""
    readonly: bool = True
    size: int | None = None
    mode: int = 0o1777  # of a tmpfs


def _depth(entry: Entry) -> int:
    return 0 if entry.target == "/" else entry.target.count("/")


def system_entries() -> list[Entry]:
    """Read-only binds (or symlinks) of the host's system directories."""
    found = []
    for path in SYSTEM_PATHS:
        if os.path.islink(path):
            found.append(Entry("symlink", path, os.readlink(path)))
        elif os.path.isdir(path):
            found.append(Entry("bind", path, path, readonly=True))
    return found


def plan(profile: SandboxProfile) -> list[Entry]:
    """The static part of the table (everything but the per-launch binds)."""
    own = [
        Entry(
            m.type,
            m.target,
            m.source or "",
            readonly=m.readonly,
            size=m.size,
        )
        for m in profile.mounts
    ]
    targets = {e.target for e in own}
    entries = [e for e in system_entries() if e.target not in targets] if profile.system else []
    entries += own
    if "/tmp" not in targets:
        entries.append(Entry("tmpfs", "/tmp", readonly=False, size=DEFAULT_TMP_SIZE))
    return sorted(entries, key=_depth)


def launch_binds(request: LaunchRequest, static: Sequence[Entry] = ()) -> list[Entry]:
    """Read-write binds of the workspace and runtime directories at their own
    paths, then a cover wherever a bind (of these or of ``static``, the
    profile's table) would show a hidden directory, with the runtime
    directories inside it bound again on top.

    A directory inside another one of the list is covered by it and skipped.
    Raises :class:`LaunchError` for a workspace that would expose the host
    (``/``, ``/usr``, ``/etc`` …) read-write.
    """
    paths: list[str] = []
    for raw in (request.workspace, *request.runtime_dirs):
        path = os.path.normpath(os.path.abspath(raw))
        if path in _FORBIDDEN_RW:
            raise LaunchError(
                f"cannot give a sandboxed job {path} read-write as its workspace; "
                "run it from a project directory or pass --workdir DIR"
            )
        if path not in paths:
            paths.append(path)
    kept = [p for p in paths if not any(_below(p, other) for other in paths)]
    entries = [Entry("bind", p, p, readonly=False) for p in kept]
    binds = [e for e in (*static, *entries) if e.kind == "bind"]
    covers: list[str] = []
    for raw in request.hidden_dirs:
        hidden = os.path.normpath(os.path.abspath(raw))
        for bind in binds:  # where each bind shows it in the sandbox, if it does
            source = os.path.normpath(bind.source)
            if hidden == source or _below(hidden, source):
                covers.append(
                    os.path.normpath(os.path.join(bind.target, os.path.relpath(hidden, source)))
                )
    for cover in dict.fromkeys(covers):
        entries.append(Entry("tmpfs", cover, readonly=False, size=HIDE_SIZE, mode=HIDE_MODE))
        entries += [Entry("bind", p, p, readonly=False) for p in paths if _below(p, cover)]
    return entries


def _below(path: str, top: str) -> bool:
    return path.startswith(top.rstrip("/") + "/")
