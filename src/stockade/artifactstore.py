"""Where a job's artifacts are kept: one small interface, a local directory behind it.

:class:`ArtifactStorage` is what the runner writes through and the faces
(CLI, HTTP) read through; :class:`LocalStorage` keeps the files under
``DATA_DIR/artifacts/JOB_ID/SHA256`` (content-addressed per job, so a name
from the job never becomes a path: there is nothing to traverse). What the
files are called, their sizes and digests are in the store, in each
attempt's result record (``artifacts``). An object-store backend is a later
step: it implements the same four methods.

The local directory is the data directory of the process that ran the job:
the CLI and the server read artifacts only where they share that directory
with the worker (one host, or a shared volume).
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from stockade.private import private_dir

__all__ = ["ArtifactStorage", "LocalStorage", "delete_artifacts", "storage_for"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_JOB = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


class ArtifactStorage(abc.ABC):
    """Keeps artifact contents by job and sha256."""

    @abc.abstractmethod
    def put(self, job_id: str, chunks: Iterable[bytes]) -> tuple[str, int, bool]:
        """Keep the bytes of ``chunks`` for ``job_id``; their sha256, size, and
        whether they are new (not kept for this job already, by an earlier attempt)."""

    @abc.abstractmethod
    def open(self, job_id: str, sha256: str) -> BinaryIO:
        """The kept bytes, for reading; ``FileNotFoundError`` if they are gone."""

    @abc.abstractmethod
    def discard(self, job_id: str, sha256: str) -> None:
        """Drop one kept content (an attempt whose artifacts were refused)."""

    @abc.abstractmethod
    def delete(self, job_id: str) -> None:
        """Drop everything kept for ``job_id`` (the job is deleted)."""


def _check(job_id: str, sha256: str | None = None) -> None:
    if not _JOB.match(job_id) or (sha256 is not None and not _DIGEST.match(sha256)):
        raise ValueError(f"not an artifact of a job: {job_id!r} {sha256!r}")


class LocalStorage(ArtifactStorage):
    """Artifacts as files under ``root`` (``DATA_DIR/artifacts``), mode 0600."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, job_id: str, chunks: Iterable[bytes]) -> tuple[str, int, bool]:
        _check(job_id)
        folder = self.root / job_id
        private_dir(folder)
        digest, size = hashlib.sha256(), 0
        partial = folder / f".partial-{os.getpid()}-{os.urandom(6).hex()}"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            target = folder / digest.hexdigest()
            new = not target.exists()
            os.replace(partial, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise
        return digest.hexdigest(), size, new

    def open(self, job_id: str, sha256: str) -> BinaryIO:
        _check(job_id, sha256)
        return open(self.root / job_id / sha256, "rb")

    def discard(self, job_id: str, sha256: str) -> None:
        _check(job_id, sha256)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.root / job_id / sha256)

    def delete(self, job_id: str) -> None:
        _check(job_id)
        shutil.rmtree(self.root / job_id, ignore_errors=True)


def storage_for(data_dir: str | os.PathLike[str] | None) -> ArtifactStorage:
    """The storage of the data directory ``data_dir`` (``None``:
    ``$STOCKADE_DATA_DIR``, else ``./.stockade``); today always local."""
    name = data_dir or os.environ.get("STOCKADE_DATA_DIR") or ".stockade"
    return LocalStorage(Path(name).absolute() / "artifacts")


def delete_artifacts(job_id: str, data_dir: str | os.PathLike[str] | None = None) -> None:
    """Remove a job's artifacts: the hook a retention pass calls for each job it deletes."""
    storage_for(data_dir).delete(job_id)
