"""The few Linux calls the sandbox backends need and Python 3.11 lacks.

``mount(2)``, ``umount2(2)``, ``unshare(2)`` and ``setns(2)`` through ctypes,
raising :class:`OSError` with the errno like the ``os`` module does. Only the
mount-table work of the chroot backend and the pid namespace of its launches
use them; everything else runs host tools (bwrap, unshare, runc).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

__all__ = [
    "CLONE_NEWPID",
    "MNT_DETACH",
    "MS_BIND",
    "MS_NODEV",
    "MS_NOEXEC",
    "MS_NOSUID",
    "MS_PRIVATE",
    "MS_RDONLY",
    "MS_REC",
    "MS_REMOUNT",
    "UMOUNT_NOFOLLOW",
    "children_in_new_pid_namespace",
    "mount",
    "umount",
    "unshare",
]

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8
CLONE_NEWPID = 0x20000000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]

_own_pid_ns: int | None = None


def _check(result: int, what: str, path: str | None = None) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)


def _b(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    """``mount(2)``; raises :class:`OSError` naming ``target``."""
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), "mount", target)


def umount(target: str, flags: int = 0) -> None:
    """``umount2(2)``; raises :class:`OSError` naming ``target``."""
    _check(_libc.umount2(_b(target), flags), "umount", target)


def unshare(flags: int) -> None:
    """``unshare(2)`` for the calling thread."""
    _check(_libc.unshare(flags), "unshare")


@contextlib.contextmanager
def children_in_new_pid_namespace() -> Iterator[None]:
    """Make the next child this thread forks pid 1 of a fresh pid namespace.

    ``unshare(CLONE_NEWPID)`` changes only where the calling thread's
    *children* are born (this process stays where it is), and it is allowed
    in a multi-threaded process. The child stays our direct child, so its
    exit status is exact and the whole namespace dies with it. On exit the
    thread goes back to creating children in its own namespace.
    """
    global _own_pid_ns  # noqa: PLW0603 - one fd for the life of the process
    if _own_pid_ns is None:
        _own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    unshare(CLONE_NEWPID)
    try:
        yield
    finally:
        _check(_libc.setns(_own_pid_ns, CLONE_NEWPID), "setns back to our pid namespace")
