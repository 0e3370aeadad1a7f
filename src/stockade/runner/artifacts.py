"""Collecting a job's artifacts from its workspace after it ends.

The workspace is the job's: everything in it is hostile input. The walk
lists directories through ``os.scandir`` without following any symlink
(a symlinked directory is not entered), at most :data:`MAX_ENTRIES` entries.
Each path matching one of the task's globs is opened through
:mod:`~stockade.runner.jobfile`: resolved beneath the workspace (a symlink
is followed only while it stays inside), non-blocking, regular files only.
A match that is not a regular file (a FIFO, socket, device) or that leads
out of the workspace is skipped and named in the result's
``artifact_skipped``; sizes are checked from ``fstat`` before a byte is
read (a sparse file of a terabyte costs nothing) and again while copying.
Over a limit, nothing of the attempt is kept and :class:`ArtifactError`
says which limit and how to raise it. Blocking: run it in a thread.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockade.artifactstore import ArtifactStorage, storage_for
from stockade.errors import ArtifactError, JobFileError, JobFileProblem
from stockade.reasons import Reason
from stockade.runner import jobfile
from stockade.runner.result import Outcome, Result

__all__ = ["DEFAULT_LIMITS", "MAX_ENTRIES", "Collected", "collect", "glob_regex", "keep_artifacts"]

DEFAULT_LIMITS = {"file": 100 * 1024 * 1024, "total": 1024 * 1024 * 1024, "count": 1000}
#: Most directory entries the walk looks at (a job could make millions).
MAX_ENTRIES = 100_000
_HINT = "raise artifact_limits ({key}: SIZE) in the task, or keep fewer files"


@dataclass
class Collected:
    """What was kept (``name``, ``size``, ``sha256`` each) and what was skipped, why."""

    kept: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over ``/``-separated relative paths: ``*`` and ``?`` stay within
    one component, ``**`` spans any number of them, ``[...]`` is a class."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            out.append(f"[{'^' + body[1:] if body.startswith('!') else body}]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _walk(root: str) -> Iterator[str]:
    """Relative paths of everything below ``root``, no symlink followed."""
    pending, seen = [""], 0
    while pending:
        rel = pending.pop()
        try:
            with os.scandir(os.path.join(root, rel) if rel else root) as entries:
                for entry in entries:
                    seen += 1
                    if seen > MAX_ENTRIES:
                        raise ArtifactError(
                            f"the workspace holds more than {MAX_ENTRIES} entries; "
                            "artifacts are looked for among fewer: narrow the globs' directory"
                        )
                    path = f"{rel}/{entry.name}" if rel else entry.name
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(path)
                    yield path
        except OSError:
            continue  # a directory the job made unreadable: nothing in it is collected


def keep_artifacts(
    result: Result, workspace: str, globs: tuple[str, ...], limits: dict[str, int], data_dir: Path
) -> None:
    """Keep the files of ``workspace`` matching ``globs`` in ``data_dir``'s
    storage and name them in ``result``; over a limit, a succeeded attempt
    fails with ``output_error``. Blocking: run it in a thread."""
    try:
        found = collect(workspace, globs, limits, storage_for(data_dir), result.job_id)
    except (ArtifactError, OSError) as exc:
        if result.outcome is Outcome.SUCCEEDED:
            result.outcome, result.reason = Outcome.FAILED, Reason.OUTPUT_ERROR
        result.error = result.error or f"artifacts not kept: {exc}"
        return
    result.artifacts, result.artifact_skipped = found.kept, found.skipped


def collect(
    workspace: str,
    globs: tuple[str, ...] | list[str],
    limits: dict[str, int],
    storage: ArtifactStorage,
    job_id: str,
) -> Collected:
    """Copy the files of ``workspace`` matching ``globs`` into ``storage``."""
    limit = {**DEFAULT_LIMITS, **limits}
    patterns = [glob_regex(g) for g in globs]
    found = Collected()
    total = 0
    made: list[str] = []
    try:
        for rel in sorted(_walk(workspace)):
            if not any(p.match(rel) for p in patterns):
                continue
            try:
                fd, info = jobfile.open_regular(workspace, rel, shown=f"artifact {rel!r}")
            except JobFileError as exc:
                if exc.problem is JobFileProblem.NOT_REGULAR and _is_dir(workspace, rel):
                    continue  # a directory matched: its files are matched on their own
                found.skipped.append({"name": rel, "reason": str(exc)})
                continue
            try:
                if len(found.kept) >= limit["count"]:
                    raise ArtifactError(
                        f"more than {limit['count']} artifacts; {_HINT.format(key='count')}"
                    )
                if info.st_size > limit["file"]:
                    raise _too_big(rel, info.st_size, limit["file"], "file")
                if total + info.st_size > limit["total"]:
                    raise _too_big(rel, total + info.st_size, limit["total"], "total")
                sha, size, new = storage.put(
                    job_id,
                    jobfile.chunks(fd, info, limit=limit["file"], shown=f"artifact {rel!r}",
                                   hint=_HINT.format(key="file")),
                )  # fmt: skip
            finally:
                os.close(fd)
            total += size
            found.kept.append({"name": rel, "size": size, "sha256": sha})
            if new:
                made.append(sha)
    except (ArtifactError, JobFileError) as exc:
        for sha in made:  # an earlier attempt's identical file stays
            storage.discard(job_id, sha)
        found.kept.clear()
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(str(exc)) from exc
    return found


def _is_dir(root: str, rel: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(os.path.join(root, rel)).st_mode)
    except OSError:
        return False


def _too_big(name: str, size: int, limit: int, key: str) -> ArtifactError:
    from stockade.units import format_size

    what = f"artifact {name!r} is" if key == "file" else f"the artifacts are, with {name!r},"
    return ArtifactError(
        f"{what} {size} bytes, over the {key} limit of {limit} bytes ({format_size(limit)}); "
        f"{_HINT.format(key=key)}"
    )
