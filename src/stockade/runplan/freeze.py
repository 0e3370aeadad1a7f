"""A pipeline job's frozen spec, as :func:`stockade.engine.jobspec.new_job` stores it.

The recorder of a run (:class:`~stockade.engine.runs.RunRecorder`) keeps
each job's task the way a queued job keeps it: its JSON form without what
only the store uses, the *sources* of its secrets, the notify entries and
the sandbox profile. This makes the same dict from a
:class:`~stockade.runplan.model.PlainTask`, so a run never needs the
models for it; a test checks both agree.
"""

from __future__ import annotations

from typing import Any

from stockade import tracing
from stockade.runplan.model import PlainTask, RunPlan

__all__ = ["SPEC_VERSION", "frozen_job"]

#: The version of a job's frozen spec (``stockade.engine.jobspec.SPEC_VERSION``).
SPEC_VERSION = 1
#: Task keys the store reads from its own columns, not the worker from the spec.
_NOT_FROZEN = ("description", "concurrency", "unique", "notify", "queue", "requires")


def frozen_job(plan: RunPlan, name: str, task: PlainTask, input: Any) -> dict[str, Any]:
    """The recorded job of one run of ``task`` with ``input``: its task name,
    frozen spec, input, priority and attempts."""
    frozen: dict[str, Any] = {
        "version": SPEC_VERSION,
        "task": task.dump(_NOT_FROZEN),
        "secrets": {secret: plan.secret_source(secret) for secret in task.secrets},
    }
    trace = tracing.carrier()
    if trace:
        frozen["trace"] = trace
    notes = [*plan.notify, *task.notify]
    if notes:
        frozen["notify"] = [dict(note) for note in notes]
    profile = plan.sandbox_profile(task.sandbox)
    if profile is not None:
        frozen["sandbox"] = profile.model_dump(mode="json")
    return {
        "task": name, "spec": frozen, "input": input, "priority": task.priority,
        "max_attempts": task.max_attempts,
    }  # fmt: skip
