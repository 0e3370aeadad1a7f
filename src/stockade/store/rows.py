"""Row builders shared by the job manager's transactions (no I/O here)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stockade.runner.result import Result
from stockade.store.gatewait import HELD
from stockade.store.records import Claim, NewJob
from stockade.store.routing import label_json, sandbox_bit
from stockade.store.states import JobState

__all__ = ["JOB_COLUMNS", "dedupe", "job_row", "lost_claim", "result_json", "result_summary"]

#: The columns :func:`job_row` fills, in its order.
JOB_COLUMNS = (
    "id", "task", "state", "priority", "input", "spec", "max_attempts", "attempts", "runs",
    "transient", "backoff_initial", "backoff_multiplier", "backoff_max", "on_timeout",
    "run_after", "created_at", "updated_at", "cancel_requested", "sandbox_need",
    "concurrency_key", "concurrency_limit", "unique_key", "unique_while", "after_ids", "after_any",
    "deps_pending", "queue",
    "labels",
)  # fmt: skip


def job_row(job: NewJob, job_id: str, now: float, created: float) -> dict[str, Any]:
    """A new job's row, ``queued`` at ``now`` and runnable from ``now`` plus
    its delay; ``created`` (at least ``now``) is its age, the claim order
    among jobs of equal priority. A job with a concurrency key or
    dependencies is written held (see :mod:`~stockade.store.gates`)."""
    keyed = job.concurrency_key is not None
    return {
        "id": job_id,
        "task": job.task,
        "state": JobState.QUEUED.value,
        "priority": job.priority,
        "input": job.input,
        "spec": job.spec,
        "max_attempts": job.max_attempts,
        "attempts": 0,
        "runs": 0,
        "transient": 0,
        "backoff_initial": job.backoff_initial,
        "backoff_multiplier": job.backoff_multiplier,
        "backoff_max": job.backoff_max,
        "on_timeout": job.on_timeout,
        "run_after": HELD if job.gated else now + job.delay,
        "created_at": created,
        "updated_at": now,
        "cancel_requested": False,
        "sandbox_need": sandbox_bit(job.sandbox),
        "concurrency_key": job.concurrency_key,
        "concurrency_limit": job.concurrency_limit if keyed else None,
        "unique_key": job.unique_key,
        "unique_while": job.unique_while if job.unique_key is not None else None,
        "after_ids": ",".join(job.after) if job.after else None,
        "after_any": job.after_any,
        "deps_pending": bool(job.after),
        "queue": job.queue,
        "labels": label_json(job.labels),
    }


def result_summary(result: Result) -> dict[str, Any]:
    """The columns of a job and an attempt that summarize a result."""
    return {
        "outcome": result.outcome.value,
        "reason": result.reason,
        "error": result.error,
        "exit_code": result.exit_code,
        "signal": result.signal,
    }


def result_json(result: Result) -> dict[str, Any]:
    """The result record without outputs and state (they have their own tables)."""
    data = result.to_dict()
    data.pop("outputs", None)
    data.pop("state", None)
    return data


def lost_claim(row: Any) -> Claim:
    """A claim rebuilt from the policy columns of a job whose worker vanished."""
    policy = {k: row[k] for k in Claim.POLICY_COLUMNS if k not in ("id", "runs")}
    return Claim(
        job_id=row["id"],
        run=row["runs"],
        task="",
        spec={},
        input=None,
        priority=0,
        started_at=0.0,
        **policy,
    )


def dedupe(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
