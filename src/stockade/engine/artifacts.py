"""A job's artifacts as the faces show them: from its attempts' records.

The runner records what it kept in each attempt's result (``artifacts``:
name, size, sha256); the contents are in the artifact storage
(:mod:`stockade.artifactstore`). A job's artifacts are those of its latest
attempt that kept any. A name is looked up in that list, never used as a
path: the content is found by its digest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from stockade.artifactstore import ArtifactStorage, storage_for
from stockade.errors import JobNotFound, StoreError

if TYPE_CHECKING:
    from stockade.store.records import AttemptRecord

__all__ = ["ArtifactNotFound", "listed", "open_artifact", "storage_at"]


class ArtifactNotFound(JobNotFound):
    """The job has no artifact of that name (or its content is gone)."""

    def __init__(self, job_id: str, name: str) -> None:
        self.job_id = job_id
        self.name = name
        StoreError.__init__(
            self,
            f"job {job_id} has no artifact {name!r}; `stockade artifacts {job_id}` lists them",
        )


def storage_at(data_dir: str | os.PathLike[str] | None) -> ArtifactStorage:
    """The artifact storage of ``data_dir`` (else ``$STOCKADE_DATA_DIR``, else ``./.stockade``)."""
    return storage_for(data_dir)


def listed(attempts: Sequence[AttemptRecord]) -> tuple[int | None, list[dict[str, Any]]]:
    """The attempt whose artifacts a job shows, and those artifacts."""
    for record in reversed(attempts):
        items = (record.result or {}).get("artifacts") or []
        if items:
            return record.attempt, [dict(item) for item in items]
    return None, []


def open_artifact(
    storage: ArtifactStorage, job_id: str, attempts: Sequence[AttemptRecord], name: str
) -> tuple[dict[str, Any], BinaryIO]:
    """The record and an open file of artifact ``name``; :class:`ArtifactNotFound`."""
    _, items = listed(attempts)
    for item in items:
        if item.get("name") == name:
            try:
                return item, storage.open(job_id, str(item.get("sha256")))
            except (OSError, ValueError):
                break
    raise ArtifactNotFound(job_id, name)
