"""Paths a user gives, checked before anything runs.

Standard library only: ``stockade exec`` checks its destinations on its fast
path. Both checks are lexical or a ``stat``: what happens to the path while
the job runs (a symlink it plants, a directory it removes) is checked again
where the file is read or written.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath

__all__ = ["workspace_path", "writable_dir", "writable_file"]


def workspace_path(value: str, what: str) -> str:
    """``value`` as a path relative to a job's workspace, or ``ValueError``
    saying why not (empty, absolute, or climbing out with ``..``); ``what``
    names the key in the message. Symlinks are checked where the file is read."""
    if not value.strip():
        raise ValueError(f"{what} is empty: give a path inside the workspace")
    path = PurePosixPath(value)
    if path.is_absolute():
        raise ValueError(f"{what} {value!r} is absolute: give a path relative to the workspace")
    if ".." in path.parts:
        raise ValueError(f"{what} {value!r} escapes the workspace: '..' is not allowed")
    return str(path)


def writable_file(value: str, what: str) -> str:
    """``value`` if stockade can create or replace a file there, else
    ``ValueError`` saying what to fix: its directory must exist and be
    writable, and the path must not be a directory or a read-only file."""
    if not value.strip():
        raise ValueError(f"{what} is empty: give a file name")
    parent = os.path.dirname(os.path.abspath(value))
    if not os.path.isdir(parent):
        raise ValueError(f"{what} {value!r}: directory {parent!r} does not exist; create it first")
    if os.path.isdir(value):
        raise ValueError(f"{what} {value!r} is a directory: give a file name")
    if os.path.exists(value):
        if not os.access(value, os.W_OK):
            raise ValueError(f"{what} {value!r} is not writable")
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {value!r}: directory {parent!r} is not writable")
    return value


def writable_dir(value: str, what: str) -> str:
    """``value`` if it is, or can be made, a writable directory, else
    ``ValueError`` saying what to fix. A missing directory is judged by its
    nearest existing ancestor, which is where it would be created."""
    if not value.strip():
        raise ValueError(f"{what} is empty: give a directory")
    path = os.path.abspath(value)
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ValueError(f"{what} {value!r}: {probe!r} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {value!r}: {probe!r} is not writable")
    return value
