"""Opening and reading a file the job controls, as hostile input.

The ``file:`` output, ``$STOCKADE_OUTPUT`` and a step's JUnit report are
written by the job, so whatever is at their path is the job's choice: a
symlink to a host file, a FIFO no one writes (a blocking open would freeze
the reader), a device, a sparse file of a terabyte. Every such read goes
through here:

* The path is resolved beneath its directory (the workspace, the attempt's
  runtime directory): ``openat2(2)`` with ``RESOLVE_BENEATH |
  RESOLVE_NO_MAGICLINKS`` (Linux 5.6+), else a walk one component at a time
  with ``O_NOFOLLOW`` from a directory fd that follows a relative symlink
  only while it stays beneath, the same rule. An absolute path, ``..`` or a
  symlink leading out, an absolute symlink and a ``/proc`` magic link are
  refused; ``symlinks=False`` refuses every symlink.
* The file is opened with ``O_NONBLOCK``, so opening a FIFO or a device never
  waits, and ``fstat`` must say it is a regular file before a byte is read.
* Its ``st_size`` over the limit is refused before reading (a sparse file
  costs nothing), and at most limit + 1 bytes are read, so a file that grows
  while it is read is refused too.

A caller in an event loop runs these in a thread: a read from a file system
the job can stall must not stop the loop. ``STOCKADE_OPENAT2=0`` makes the
walk be used even where ``openat2`` works (the tests run both).
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Iterator

from stockade.errors import JobFileError, JobFileProblem

__all__ = ["MAX_OUTPUT_HINT", "chunks", "open_regular", "read", "read_open"]

#: How to raise the limit of an output file (the task's ``max_output``).
MAX_OUTPUT_HINT = "raise max_output (--max-output SIZE, or max_output: in the task) or write less"

_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_SYS_OPENAT2 = 437  # the same number on every architecture stockade runs on
_RESOLVE_NO_MAGICLINKS, _RESOLVE_NO_SYMLINKS, _RESOLVE_BENEATH = 0x02, 0x04, 0x08
_MAX_LINKS = 40  # as the kernel's own limit on symlinks in one lookup
_CHUNK = 1 << 20


def read(
    root: str,
    relative: str,
    *,
    limit: int,
    shown: str,
    hint: str = MAX_OUTPUT_HINT,
    where: str = "workspace",
    symlinks: bool = True,
) -> bytearray:
    """The bytes of ``relative`` beneath ``root``, at most ``limit`` of them.

    ``shown`` names the file in errors ("output file 'out.json'"), ``hint``
    says how to raise the limit, ``where`` names ``root``. Raises
    :class:`~stockade.errors.JobFileError` for anything refused."""
    fd, info = open_regular(root, relative, shown=shown, where=where, symlinks=symlinks)
    try:
        return read_open(fd, info, limit=limit, shown=shown, hint=hint)
    finally:
        os.close(fd)


def open_regular(
    root: str, relative: str, *, shown: str, where: str = "workspace", symlinks: bool = True
) -> tuple[int, os.stat_result]:
    """A read-only fd of the regular file ``relative`` beneath ``root``, and its
    ``fstat``; the caller closes it. :class:`JobFileError` when refused."""
    if os.path.isabs(relative):
        raise JobFileError(
            f"{shown} must be a path relative to the {where}", JobFileProblem.ESCAPES, shown
        )
    try:
        dirfd = os.open(root, _DIR)
    except OSError as exc:
        raise JobFileError(
            f"{shown} cannot be read: the {where} {root!r}: {exc.strerror}",
            JobFileProblem.UNREADABLE,
            shown,
        ) from exc
    try:
        fd = _open_beneath(dirfd, relative, symlinks)
    except OSError as exc:
        raise _refusal(exc, shown, where, symlinks) from exc
    finally:
        os.close(dirfd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise JobFileError(
            f"{shown} is {_kind(info.st_mode)}, not a regular file; write a regular file there",
            JobFileProblem.NOT_REGULAR,
            shown,
        )
    return fd, info


def read_open(
    fd: int, info: os.stat_result, *, limit: int, shown: str, hint: str = MAX_OUTPUT_HINT
) -> bytearray:
    """The bytes of the regular file ``fd`` from its start (``info`` its
    ``fstat``), refused over ``limit`` from its size and again after reading
    ``limit`` + 1 bytes."""
    if info.st_size > limit:
        raise _too_large(shown, f"{info.st_size} bytes", limit, hint, info.st_size)
    buffer = bytearray(info.st_size + 1)
    filled = 0
    while True:
        if filled == len(buffer):  # grew since the fstat
            if filled > limit:
                raise _too_large(shown, f"more than {limit} bytes", limit, hint, None)
            buffer.extend(bytes(min(max(filled, _CHUNK), limit + 1 - filled)))
        got = _pread(fd, [memoryview(buffer)[filled:]], filled, shown)
        if not got:
            break
        filled += got
    del buffer[filled:]
    return buffer


def chunks(
    fd: int, info: os.stat_result, *, limit: int, shown: str, hint: str = MAX_OUTPUT_HINT
) -> Iterator[bytes]:
    """The regular file ``fd`` from its start in pieces of up to 1 MiB, for a
    reader that need not hold it whole; refused as :func:`read_open` refuses."""
    if info.st_size > limit:
        raise _too_large(shown, f"{info.st_size} bytes", limit, hint, info.st_size)
    offset = 0
    piece = memoryview(bytearray(min(_CHUNK, limit + 1)))
    while got := _pread(fd, [piece[: limit + 1 - offset]], offset, shown):
        offset += got
        if offset > limit:
            raise _too_large(shown, f"more than {limit} bytes", limit, hint, None)
        yield bytes(piece[:got])


def _pread(fd: int, buffers: list[memoryview], offset: int, shown: str) -> int:
    try:
        return os.preadv(fd, buffers, offset)
    except OSError as exc:
        raise JobFileError(
            f"{shown} cannot be read: {exc.strerror}", JobFileProblem.UNREADABLE, shown
        ) from exc


def _too_large(shown: str, size: str, limit: int, hint: str, exact: int | None) -> JobFileError:
    from stockade.units import format_size  # only on this path: kept off exec's start-up

    return JobFileError(
        f"{shown} is {size}, over the limit of {limit} bytes ({format_size(limit)}); {hint}",
        JobFileProblem.TOO_LARGE,
        shown,
        size=exact,
        limit=limit,
    )


def _refusal(exc: OSError, shown: str, where: str, symlinks: bool) -> JobFileError:
    """The error for a failed open: what the job did, and what to do instead."""
    code = exc.errno
    if code == errno.ENOENT:
        return JobFileError(f"{shown} was not written by the job", JobFileProblem.MISSING, shown)
    if code == errno.EXDEV:
        return JobFileError(
            f"{shown} escapes the {where}: '..' or a symlink leads out of it "
            f"(an absolute symlink does too); keep the file inside the {where}",
            JobFileProblem.ESCAPES,
            shown,
        )
    if code == errno.ELOOP:
        what = "a symlink" if not symlinks else "a /proc link or too many symlinks"
        return JobFileError(
            f"{shown} cannot be read: it is reached through {what}; write a regular file there",
            JobFileProblem.SYMLINK,
            shown,
        )
    if code == errno.ENXIO:  # a socket
        return JobFileError(
            f"{shown} is a socket, not a regular file; write a regular file there",
            JobFileProblem.NOT_REGULAR,
            shown,
        )
    return JobFileError(f"{shown} cannot be read: {exc.strerror}", JobFileProblem.UNREADABLE, shown)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file"


def _open_beneath(dirfd: int, relative: str, symlinks: bool) -> int:
    resolve = _RESOLVE_NO_SYMLINKS if not symlinks else _RESOLVE_NO_MAGICLINKS
    opener = _openat2_function()
    if opener is not None:
        return opener(dirfd, relative, _RESOLVE_BENEATH | resolve)
    return _walk(dirfd, relative, symlinks)


class _Openat2:
    """``openat2(2)`` through ctypes (Python has no binding of its own)."""

    def __init__(self) -> None:
        import ctypes

        class OpenHow(ctypes.Structure):
            _fields_ = [
                ("flags", ctypes.c_uint64),
                ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64),
            ]

        self._ctypes = ctypes
        self._how = OpenHow
        self._syscall = ctypes.CDLL(None, use_errno=True).syscall
        self._syscall.restype = ctypes.c_long

    def __call__(self, dirfd: int, path: str, resolve: int, flags: int = _FLAGS) -> int:
        ctypes = self._ctypes
        how = self._how(flags, 0, resolve)
        for _ in range(16):  # EAGAIN: a rename or mount raced the lookup
            fd = self._syscall(
                ctypes.c_long(_SYS_OPENAT2),
                ctypes.c_int(dirfd),
                ctypes.c_char_p(os.fsencode(path)),
                ctypes.byref(how),
                ctypes.c_size_t(ctypes.sizeof(how)),
            )
            if fd >= 0:
                return int(fd)
            code = ctypes.get_errno()
            if code not in (errno.EAGAIN, errno.EINTR):
                raise OSError(code, os.strerror(code), path)
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), path)


def _openat2_function() -> _Openat2 | None:
    """The working ``openat2``, or None (turned off, or refused here)."""
    if os.environ.get("STOCKADE_OPENAT2") == "0":
        return None
    return _probe_openat2()


@functools.cache
def _probe_openat2() -> _Openat2 | None:
    """``openat2`` if it works on this host (not on an old kernel, or under a
    seccomp filter that refuses it), found once."""
    try:
        candidate = _Openat2()
        os.close(candidate(-100, "/", 0, os.O_PATH | os.O_CLOEXEC))  # AT_FDCWD
    except (OSError, AttributeError):
        return None
    return candidate


def _walk(dirfd: int, relative: str, symlinks: bool) -> int:
    """``openat2``'s answer without it: one component at a time, no symlink
    followed by the kernel; a relative one is read and followed by hand."""
    pending = [p for p in reversed(relative.split("/")) if p not in ("", ".")]
    stack = [os.open(".", _DIR, dir_fd=dirfd)]
    links = 0
    try:
        while pending:
            name = pending.pop()
            if name == "..":
                if len(stack) == 1:
                    raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), relative)
                os.close(stack.pop())
                continue
            last = not pending
            try:
                fd = os.open(name, (_FLAGS if last else _DIR) | os.O_NOFOLLOW, dir_fd=stack[-1])
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                if not stat.S_ISLNK(os.lstat(name, dir_fd=stack[-1]).st_mode):
                    raise
                links += 1
                if not symlinks or links > _MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), relative) from exc
                target = os.readlink(name, dir_fd=stack[-1])
                if target.startswith("/"):
                    raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), relative) from exc
                pending += [p for p in reversed(target.split("/")) if p not in ("", ".")]
                continue
            if last:
                return fd
            stack.append(fd)
        return os.open(".", _FLAGS, dir_fd=stack[-1])  # the directory itself
    finally:
        for fd in stack:
            os.close(fd)
