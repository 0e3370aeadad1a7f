"""stockade's own files are private: directories 0700, files 0600.

The data directory holds every job's input, frozen spec and log (the SQLite
store, ``logs/``, ``run/``, ``cache/``). A sandboxed job runs as another
user (bwrap's default is ``nobody``), so nothing in it may be readable by
other users. Directories stockade makes are created ``0700``; an existing
data directory that it owns is tightened to ``0700``, and one that belongs
to another user and is open to others is refused (stockade could not make
it private). Files are created ``0600`` (:func:`create_private`).
"""

from __future__ import annotations

import os
import stat

from stockade.errors import UsageError

__all__ = ["DIR_MODE", "FILE_MODE", "private_dir", "private_file", "private_opener"]

DIR_MODE = 0o700
FILE_MODE = 0o600

#: Directories already made private by this process (a worker asks per attempt).
_done: set[str] = set()


def private_dir(path: str | os.PathLike[str]) -> None:
    """Make ``path`` an existing directory only its owner can enter.

    Missing parents are created too (with the default mode: they are not
    stockade's). Raises :class:`UsageError` for a directory of another user
    that is open to others, and ``OSError`` when it cannot be made.
    """
    key = os.fspath(path)
    if key in _done:
        return
    os.makedirs(key, mode=DIR_MODE, exist_ok=True)
    _tighten(key, DIR_MODE, "data directory")
    if len(_done) > 256:
        _done.clear()
    _done.add(key)


def private_file(path: str | os.PathLike[str], create: bool = True) -> None:
    """Tighten ``path`` to mode 0600 if it is open to others; if it is missing,
    create it empty with that mode (unless ``create`` is false)."""
    try:
        if not create:
            _tighten(os.fspath(path), FILE_MODE, "file")
            return
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
    except FileNotFoundError:
        return
    except FileExistsError:
        _tighten(os.fspath(path), FILE_MODE, "file")


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open` that creates files with mode 0600."""
    return os.open(path, flags | os.O_CLOEXEC, FILE_MODE)


def _tighten(path: str, mode: int, what: str) -> None:
    st = os.stat(path)
    if not stat.S_IMODE(st.st_mode) & 0o077:
        return
    if st.st_uid != os.geteuid():
        raise UsageError(
            f"{what} {path} belongs to uid {st.st_uid} and is open to other users: "
            f"chmod {mode:o} it as its owner, or use another --data-dir"
        )
    os.chmod(path, mode)
