"""Request and response bodies of the HTTP API (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ActionResult", "JobDetails", "JobList", "JobOut", "SubmitRequest"]


class SubmitRequest(BaseModel):
    """A job to queue: a task from the server's config and its input."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=200, description="A task of the server's config.")
    input: Any = Field(default=None, description="The job's input (any JSON).")
    priority: int | None = Field(
        default=None, ge=-1000, le=1000, description="Higher runs first [the task's]."
    )
    delay: float = Field(default=0.0, ge=0, le=365 * 86400, description="Seconds to wait first.")


class JobOut(BaseModel):
    """A job as the API shows it."""

    id: str
    task: str
    state: str
    priority: int
    attempts: int
    max_attempts: int
    created_at: float
    updated_at: float
    run_after: float
    started_at: float | None
    finished_at: float | None
    worker_id: str | None
    cancel_requested: bool
    outcome: str | None
    exit_code: int | None
    signal: int | None
    reason: str | None
    error: str | None
    input: Any = None


class JobDetails(JobOut):
    """A job with its attempts and outputs."""

    attempts_detail: list[dict[str, Any]] = Field(default_factory=list)
    outputs: dict[str, Any] | None = None


class JobList(BaseModel):
    """A page of jobs, newest first; pass ``next`` as ``after`` for the next page."""

    jobs: list[JobOut]
    next: str | None = None


class ActionResult(BaseModel):
    """What a cancel or retry did: ``cancelled``, ``cancelling``, ``queued``,
    ``already <state>``."""

    id: str
    result: str
