"""The result cache: ``cache: key: [...]`` on a pipeline step.

A job of such a step gets a key: a SHA-256 over the pipeline, step and item
names, the job's task as rendered for it (command, env, sandbox, …), its
input and each entry of ``cache.key``:

* ``files: GLOB`` — the names and contents of the regular files matching
  GLOB (relative to the job's workspace; ``**`` matches directories
  recursively), each of at most 1 GiB, read in a thread as a job's files are
  (:mod:`stockade.runner.jobfile`);
* ``env: NAME`` — the variable's value for the job (its task's, else stockade's);
* anything else — the text itself, after ``${{ }}`` is evaluated
  (``${{ steps.fetch.outputs.version }}``).

A job whose key matches a stored success is not run: its outputs, exit code
and tests are taken from the stored result and it is shown as cached. Each
success is stored as ``DATA_DIR/cache/KEY.json``; ``stockade cache clear``
removes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from stockade.errors import JobFileError, JobFileProblem
from stockade.pipeline.expr import render, to_text
from stockade.pipeline.model import Job, RunState, StepState
from stockade.pipeline.plan import JobPlan, context_for
from stockade.pipeline.test2json import TestCase
from stockade.private import private_dir, private_opener
from stockade.runner import jobfile

__all__ = ["MAX_KEY_FILE_BYTES", "ResultCache", "cache_key", "inputs_digest"]

#: Task keys that do not change what a job does: left out of its cache key.
_NOT_RUN = {"description", "concurrency", "unique"}

MAX_KEY_FILE_BYTES = 1 << 30
"""Largest file a ``files:`` key entry hashes; a bigger one fails the job."""
_HINT = "narrow the files: pattern of the step's cache key"


async def cache_key(run: RunState, step: StepState, job: Job, plan: JobPlan) -> str | None:
    """The job's cache key, or ``None`` when its step has no ``cache:``.

    ``files:`` entries are hashed in a thread: the files are the workspace's,
    which earlier jobs wrote. Raises :class:`~stockade.pipeline.expr.ExprError`
    when a key entry's expression cannot be evaluated, and
    :class:`~stockade.errors.JobFileError` for a matching file over
    :data:`MAX_KEY_FILE_BYTES`."""
    spec = step.spec.cache
    if spec is None:
        return None
    return await _key(run, step, job, plan, spec.key, job.inputs)


async def inputs_digest(run: RunState, step: StepState, job: Job, plan: JobPlan) -> str | None:
    """The digest of what the job is made from (its step's ``inputs:``, its
    task as rendered, its input), or ``None`` when the step declares none.
    A rerun reuses a recorded success only when it is unchanged."""
    if step.spec.inputs is None:
        return None
    return await _key(run, step, job, plan, step.spec.inputs, None)


async def _key(
    run: RunState,
    step: StepState,
    job: Job,
    plan: JobPlan,
    entries: list[str],
    inputs: str | None,
) -> str:
    """SHA-256 over the job's name, task, input, ``inputs`` digest and ``entries``."""
    workspace = os.path.abspath(plan.task.workdir or os.getcwd())
    context = context_for(run, step, job.item, job.key)
    # Everything but the files is encoded here, on the loop that owns the run's state.
    parts: list[bytes | str] = [
        _part("job", [run.pipeline, step.name, job.key]),
        _part("task", plan.task.dump(_NOT_RUN)),
        _part("input", plan.input),
    ]
    if inputs is not None:
        parts.append(_part("inputs", inputs))
    for entry in entries:
        text = to_text(render(entry, context))
        kind, _, rest = text.partition(":")
        kind, rest = kind.strip(), rest.strip()
        if kind == "files" and rest:
            parts.append(rest)  # a pattern: hashed with its files below
        elif kind == "env" and rest:
            parts.append(_part("env", [rest, plan.task.env.get(rest, os.environ.get(rest))]))
        else:
            parts.append(_part("text", text))
    if all(isinstance(part, bytes) for part in parts):
        return _digest(workspace, parts)
    return await asyncio.to_thread(_digest, workspace, parts)


def _part(label: str, value: Any) -> bytes:
    return json.dumps([label, value], sort_keys=True, default=str).encode()


def _digest(workspace: str, parts: list[bytes | str]) -> str:
    """SHA-256 over the encoded parts, a ``files:`` pattern's with its files."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            digest.update(_part("files", [part, _files_digest(workspace, part)]))
        else:
            digest.update(part)
        digest.update(b"\n")
    return digest.hexdigest()


def _files_digest(workspace: str, pattern: str) -> str:
    """Names and contents of the regular files matching ``pattern``, opened as
    :mod:`~stockade.runner.jobfile` opens a job's files. A FIFO, a directory or
    a file gone meanwhile is left out; one reached through a symlink out of
    the workspace counts by its name only (its content is not read)."""
    digest = hashlib.sha256()
    names = sorted(glob.glob(pattern, root_dir=workspace, recursive=True))
    for name in names:
        shown = f"cache key file {name!r}"
        try:
            fd, info = jobfile.open_regular(workspace, name, shown=shown)
        except JobFileError as exc:
            if exc.problem in (JobFileProblem.ESCAPES, JobFileProblem.SYMLINK):
                digest.update(name.encode() + b"\0" + exc.problem.value.encode() + b"\0")
            elif exc.problem not in (JobFileProblem.NOT_REGULAR, JobFileProblem.MISSING):
                raise
            continue
        try:
            digest.update(name.encode() + b"\0")
            for chunk in jobfile.chunks(
                fd, info, limit=MAX_KEY_FILE_BYTES, shown=shown, hint=_HINT
            ):
                digest.update(chunk)
        finally:
            os.close(fd)
        digest.update(b"\0")
    return digest.hexdigest()


class ResultCache:
    """Stored successes under ``DATA_DIR/cache``, one JSON file per key."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.directory = Path(data_dir) / "cache"

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored success for ``key``, if any (an unreadable entry is a miss)."""
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("key") == key else None

    def put(self, key: str, run: RunState, job: Job) -> None:
        """Store ``job``'s success under ``key`` (written atomically)."""
        private_dir(self.directory)
        record = {
            "key": key,
            "stored": time.time(),
            "run_id": run.run_id,
            "job": job.name,
            "job_id": job.job_id,
            "exit_code": job.exit_code,
            "outputs": job.outputs,
            "log": job.log_path,
            "tests": [{**case.to_dict(), "output": "".join(case.output)} for case in job.tests],
        }
        path = self._path(key)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        with open(partial, "w", encoding="utf-8", opener=private_opener) as fh:
            fh.write(json.dumps(record, default=str))
        os.replace(partial, path)

    def restore(self, job: Job, record: dict[str, Any]) -> None:
        """Give ``job`` the stored result's outputs, exit code, log and tests."""
        outputs = record.get("outputs")
        job.outputs = outputs if isinstance(outputs, dict) else {}
        exit_code = record.get("exit_code")
        job.exit_code = exit_code if isinstance(exit_code, int) else None
        log = record.get("log")
        job.log_path = log if isinstance(log, str) else None
        job.cached_from = str(record.get("run_id") or "")
        job.from_cache = True
        job.tests = [
            TestCase(
                str(test.get("package", "")),
                str(test.get("test", "")),
                str(test.get("status", "passed")),
                float(test.get("elapsed") or 0.0),
                [str(test["output"])] if test.get("output") else [],
            )
            for test in record.get("tests") or []
            if isinstance(test, dict)
        ]

    def clear(self) -> int:
        """Remove every stored result; return how many there were."""
        removed = 0
        with contextlib.suppress(FileNotFoundError):
            for path in self.directory.iterdir():
                if path.suffix in (".json", ".tmp"):
                    path.unlink(missing_ok=True)
                    removed += path.suffix == ".json"
        return removed
