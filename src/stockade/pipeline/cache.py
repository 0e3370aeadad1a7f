"""The result cache: ``cache: key: [...]`` on a pipeline step.

A job of such a step gets a key: a SHA-256 over the pipeline, step and item
names, the job's task as rendered for it (command, env, sandbox, …), its
input and each entry of ``cache.key``:

* ``files: GLOB`` — the names and contents of the files matching GLOB
  (relative to the job's workspace; ``**`` matches directories recursively);
* ``env: NAME`` — the variable's value for the job (its task's, else stockade's);
* anything else — the text itself, after ``${{ }}`` is evaluated
  (``${{ steps.fetch.outputs.version }}``).

A job whose key matches a stored success is not run: its outputs, exit code
and tests are taken from the stored result and it is shown as cached. Each
success is stored as ``DATA_DIR/cache/KEY.json``; ``stockade cache clear``
removes them.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from stockade.pipeline.expr import render, to_text
from stockade.pipeline.model import Job, RunState, StepState
from stockade.pipeline.plan import JobPlan, context_for
from stockade.pipeline.test2json import TestCase

__all__ = ["ResultCache", "cache_key", "inputs_digest"]

_CHUNK = 1 << 20


def cache_key(run: RunState, step: StepState, job: Job, plan: JobPlan) -> str | None:
    """The job's cache key, or ``None`` when its step has no ``cache:``.

    Raises :class:`~stockade.pipeline.expr.ExprError` when a key entry's
    expression cannot be evaluated."""
    spec = step.spec.cache
    if spec is None:
        return None
    return _digest(run, step, job, plan, spec.key, job.inputs)


def inputs_digest(run: RunState, step: StepState, job: Job, plan: JobPlan) -> str | None:
    """The digest of what the job is made from (its step's ``inputs:``, its
    task as rendered, its input), or ``None`` when the step declares none.
    A rerun reuses a recorded success only when it is unchanged."""
    if step.spec.inputs is None:
        return None
    return _digest(run, step, job, plan, step.spec.inputs, None)


def _digest(
    run: RunState, step: StepState, job: Job, plan: JobPlan, entries: list[str], inputs: str | None
) -> str:
    workspace = os.path.abspath(plan.task.workdir or os.getcwd())
    context = context_for(run, step, job.item, job.key)
    digest = hashlib.sha256()

    def part(label: str, value: Any) -> None:
        digest.update(json.dumps([label, value], sort_keys=True, default=str).encode())
        digest.update(b"\n")

    part("job", [run.pipeline, step.name, job.key])
    part("task", plan.task.model_dump(mode="json", exclude={"description"}))
    part("input", plan.input)
    if inputs is not None:
        part("inputs", inputs)
    for entry in entries:
        text = to_text(render(entry, context))
        kind, _, rest = text.partition(":")
        kind, rest = kind.strip(), rest.strip()
        if kind == "files" and rest:
            part("files", [rest, _files_digest(workspace, rest)])
        elif kind == "env" and rest:
            part("env", [rest, plan.task.env.get(rest, os.environ.get(rest))])
        else:
            part("text", text)
    return digest.hexdigest()


def _files_digest(workspace: str, pattern: str) -> str:
    """Names and contents of the regular files matching ``pattern``."""
    digest = hashlib.sha256()
    names = sorted(glob.glob(pattern, root_dir=workspace, recursive=True))
    for name in names:
        path = os.path.join(workspace, name)
        if not os.path.isfile(path):
            continue
        digest.update(name.encode() + b"\0")
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
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
        self.directory.mkdir(parents=True, exist_ok=True)
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
        partial.write_text(json.dumps(record, default=str), encoding="utf-8")
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
