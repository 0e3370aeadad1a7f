"""Lend a sandboxed job's user write access to a host directory, and take it back.

A root-run sandbox starts the job as an unprivileged user (``nobody`` by
default), so a writable bind of a root-owned directory (``--bind ./out:/out``)
or a workspace the job did not get from stockade would refuse every write.
Changing the directory's owner would change the host for good; instead a
POSIX ACL entry ``user:UID:rwx`` is added to the directory itself (not to
what is in it) for as long as a slot uses it, and the directory's ACL is put
back exactly as it was when the last slot of this process lets go.

The ACL is read and written as the kernel's ``system.posix_acl_access``
extended attribute (``linux/posix_acl_xattr.h``): a version word, then
(tag, permissions, id) entries sorted by tag and id. Python has no binding
and the ``acl`` tools are often missing, so this small codec is here rather
than a dependency. A file system without ACLs (``EOPNOTSUPP``) leaves the
directory as it is; the job then sees ``Permission denied`` as before.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import threading
from dataclasses import dataclass

__all__ = ["Lease", "lend", "writable_by"]

_XATTR = "system.posix_acl_access"
_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_UNDEFINED = 0xFFFFFFFF
_ENTRY = struct.Struct("<HHI")
_HEADER = struct.Struct("<I")


@dataclass
class _Held:
    """A directory this process lent: its ACL before, and how many leases hold it."""

    before: bytes | None
    mode: int
    count: int


_held: dict[tuple[str, int], _Held] = {}
_lock = threading.Lock()


def writable_by(path: str, uid: int, gid: int) -> bool:
    """Whether ``uid``/``gid`` may write and enter ``path`` by its mode bits alone."""
    info = os.stat(path)
    if info.st_uid == uid:
        need = stat.S_IWUSR | stat.S_IXUSR
    elif info.st_gid == gid:
        need = stat.S_IWGRP | stat.S_IXGRP
    else:
        need = stat.S_IWOTH | stat.S_IXOTH
    return info.st_mode & need == need


def _decode(data: bytes) -> list[tuple[int, int, int]]:
    (version,) = _HEADER.unpack_from(data)
    if version != _VERSION:
        raise ValueError(f"unknown ACL version {version}")
    return [_ENTRY.unpack_from(data, off) for off in range(_HEADER.size, len(data), _ENTRY.size)]


def _encode(entries: list[tuple[int, int, int]]) -> bytes:
    entries = sorted(entries, key=lambda e: (e[0], e[2]))
    return _HEADER.pack(_VERSION) + b"".join(_ENTRY.pack(*e) for e in entries)


def _from_mode(mode: int) -> list[tuple[int, int, int]]:
    return [
        (_USER_OBJ, (mode >> 6) & 7, _UNDEFINED),
        (_GROUP_OBJ, (mode >> 3) & 7, _UNDEFINED),
        (_OTHER, mode & 7, _UNDEFINED),
    ]


def _with_user(entries: list[tuple[int, int, int]], uid: int) -> list[tuple[int, int, int]]:
    """``entries`` plus ``user:uid:rwx`` and a mask that lets it through."""
    kept = [e for e in entries if not (e[0] == _USER and e[2] == uid) and e[0] != _MASK]
    kept.append((_USER, 7, uid))
    group_class = 0
    for tag, perm, _ in kept:
        if tag in (_USER, _GROUP_OBJ, _GROUP):
            group_class |= perm
    return [*kept, (_MASK, group_class, _UNDEFINED)]


class Lease:
    """Write access lent to one uid on some directories; :meth:`release` ends it."""

    def __init__(self, uid: int, gid: int) -> None:
        self.uid, self.gid = uid, gid
        self._keys: list[tuple[str, int]] = []

    def add(self, path: str) -> bool:
        """Lend ``path`` (a directory) to the uid unless its mode already lets
        it write; ``False`` when the file system keeps no ACLs."""
        path = os.path.realpath(path)
        key = (path, self.uid)
        if key in self._keys or writable_by(path, self.uid, self.gid):
            return True  # lent already (a slot's every launch asks again), or no need
        with _lock:
            held = _held.get(key)
            if held is None:
                try:
                    held = _lend(path, self.uid)
                except OSError as exc:
                    if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
                        return False
                    raise
                _held[key] = held
            held.count += 1
        self._keys.append(key)
        return True

    def release(self) -> None:
        """Take back every directory this lease lent (the last lease restores it)."""
        keys, self._keys = self._keys, []
        with _lock:
            for key in keys:
                held = _held.get(key)
                if held is None:
                    continue
                held.count -= 1
                if held.count <= 0:
                    del _held[key]
                    _restore(key[0], held)


def lend(paths: list[str], uid: int, gid: int) -> Lease:
    """A :class:`Lease` on each directory of ``paths``."""
    lease = Lease(uid, gid)
    for path in paths:
        lease.add(path)
    return lease


def _lend(path: str, uid: int) -> _Held:
    mode = stat.S_IMODE(os.stat(path).st_mode)
    try:
        before: bytes | None = os.getxattr(path, _XATTR)
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise
        before = None
    entries = _decode(before) if before else _from_mode(mode)
    os.setxattr(path, _XATTR, _encode(_with_user(entries, uid)))
    return _Held(before, mode, 0)


def _restore(path: str, held: _Held) -> None:
    try:
        if held.before is not None:
            os.setxattr(path, _XATTR, held.before)
        else:
            os.removexattr(path, _XATTR)
        os.chmod(path, held.mode)  # the mask had taken the group bits
    except OSError:
        pass  # the directory is gone: nothing is left to restore
