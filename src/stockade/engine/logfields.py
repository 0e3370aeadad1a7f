"""The fields a worker's log lines about a job carry, for JSON logs to filter on.

Passed as a log call's ``extra``: text logs leave them out (the message
says the job id already); ``--log-format json`` writes each as a key.
"""

from __future__ import annotations

from typing import Any

from stockade.store import Claim

__all__ = ["job_fields", "worker_fields"]


def job_fields(worker_id: str, claim: Claim) -> dict[str, Any]:
    """``job_id``, ``attempt`` (the attempt's number), ``task`` and ``worker``."""
    return {"job_id": claim.job_id, "attempt": claim.run, "task": claim.task, "worker": worker_id}


def worker_fields(worker_id: str, job_id: str | None = None) -> dict[str, Any]:
    """``worker``, and ``job_id`` when the line is about a job known by id only."""
    return {"worker": worker_id} if job_id is None else {"worker": worker_id, "job_id": job_id}
