"""Mount operations for sandbox roots, with structured errors and a sure teardown.

Each helper raises :class:`~stockade.errors.MountError` naming the
operation, target, file-system type and source, chained to the ``OSError``.
:func:`unmount_tree` takes down everything mounted at or below a directory
(children first, as read back from ``/proc/self/mountinfo`` rather than from
what we believe we mounted), retries busy mounts with a short backoff,
falls back to a lazy unmount, and reports what is still mounted.

A read-only bind is two calls: ``MS_BIND`` makes the bind (writable!), and
``MS_REMOUNT|MS_BIND|MS_RDONLY`` makes it read-only. Every mount made here
is ``nosuid`` and ``nodev`` unless it is the sandbox's own ``/dev``.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass

from stockade.errors import CleanupError, MountError
from stockade.sandbox import syscalls
from stockade.sandbox.syscalls import MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY, MS_REMOUNT

__all__ = [
    "MountPoint",
    "bind",
    "make_private",
    "mountinfo",
    "mounts_under",
    "tmpfs",
    "unmount_tree",
]

_SAFE = MS_NOSUID | MS_NODEV


@dataclass(frozen=True)
class MountPoint:
    """One line of ``/proc/PID/mountinfo``."""

    mount_id: int
    parent_id: int
    target: str
    fstype: str
    source: str
    options: str
    super_options: str = ""


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mountinfo(pid: str = "self") -> list[MountPoint]:
    """The mount table of ``pid``'s mount namespace, in kernel order (parents first)."""
    found = []
    with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(" "), right.split(" ")
            found.append(
                MountPoint(
                    mount_id=int(fields[0]),
                    parent_id=int(fields[1]),
                    target=_unescape(fields[4]),
                    fstype=tail[0],
                    source=_unescape(tail[1]) if len(tail) > 1 else "",
                    options=fields[5],
                    super_options=tail[2].strip() if len(tail) > 2 else "",
                )
            )
    return found


def mounts_under(root: str, pid: str = "self") -> list[MountPoint]:
    """Mounts at ``root`` or below it, parents first."""
    root = root.rstrip("/") or "/"
    prefix = root + "/"
    return [m for m in mountinfo(pid) if m.target == root or m.target.startswith(prefix)]


def _fail(op: str, path: str, exc: OSError, fstype: str = "", source: str = "") -> MountError:
    reason = exc.strerror or str(exc)
    if exc.errno == 1:  # EPERM
        reason += " (mounting needs root: run stockade as root for this backend)"
    error = MountError(op, path, fstype, source, reason)
    error.__cause__ = exc
    return error


def bind(source: str, target: str, readonly: bool, recursive: bool = False) -> None:
    """Bind ``source`` on ``target``; read-only takes the second, remount call."""
    flags = MS_BIND | (syscalls.MS_REC if recursive else 0)
    try:
        syscalls.mount(source, target, None, flags)
    except OSError as exc:
        raise _fail("bind", target, exc, "bind", source) from exc
    remount = MS_REMOUNT | MS_BIND | _SAFE | (MS_RDONLY if readonly else 0)
    try:
        syscalls.mount(None, target, None, remount)
    except OSError as exc:
        raise _fail("remount-ro" if readonly else "remount", target, exc, "bind", source) from exc


def tmpfs(
    target: str, size: int | None, mode: int = 0o1777, readonly: bool = False, dev: bool = False
) -> None:
    """Mount a fresh tmpfs of at most ``size`` bytes on ``target``."""
    data = f"mode={mode:o}" + (f",size={size}" if size else "")
    flags = MS_NOSUID | (0 if dev else MS_NODEV)
    try:
        syscalls.mount("tmpfs", target, "tmpfs", flags, data)
        if readonly:
            syscalls.mount(None, target, None, MS_REMOUNT | flags | MS_RDONLY, data)
    except OSError as exc:
        raise _fail("mount", target, exc, "tmpfs", "tmpfs") from exc


def make_private(target: str) -> None:
    """Stop mount events below ``target`` from propagating to or from other namespaces."""
    try:
        syscalls.mount(None, target, None, syscalls.MS_PRIVATE)
    except OSError as exc:
        raise _fail("make-private", target, exc) from exc


def unmount_tree(root: str, attempts: int = 8, lazy: bool = True) -> None:
    """Unmount everything at or below ``root``, children first.

    Busy mounts are retried ``attempts`` times (1 ms, doubling); then, if
    ``lazy``, detached with ``MNT_DETACH``. Raises :class:`CleanupError`
    listing what is still mounted.
    """
    delay = 0.001
    for attempt in range(attempts + 1):
        left = mounts_under(root)
        if not left:
            return
        busy = _unmount_pass(left, 0)
        if not busy:
            continue
        if attempt < attempts:
            time.sleep(delay)
            delay *= 2
    if lazy:
        _unmount_pass(mounts_under(root), syscalls.MNT_DETACH)
    remaining = [m.target for m in mounts_under(root)]
    if remaining:
        raise CleanupError(
            f"{len(remaining)} mount(s) under {root} could not be unmounted: "
            f"{', '.join(remaining[:5])}{' …' if len(remaining) > 5 else ''}; "
            f"find what holds them with `fuser -vm {remaining[0]}`, then `umount -R {root}`",
            remaining=remaining,
        )


def _unmount_pass(mounts: list[MountPoint], flags: int) -> list[str]:
    """One pass over ``mounts`` in reverse (children first); returns the busy ones."""
    busy = []
    for point in reversed(mounts):
        try:
            syscalls.umount(point.target, flags | syscalls.UMOUNT_NOFOLLOW)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOENT):
                continue  # already gone (a parent took it along, or it was stacked)
            busy.append(point.target)
    return busy
