"""Request and response bodies of the HTTP API (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stockade.jsontext import text_problem
from stockade.spec.routing import QueueName, Requires

__all__ = [
    "ERRORS",
    "MAX_BATCH",
    "ActionResult",
    "BatchOut",
    "ErrorOut",
    "FieldError",
    "InvalidOut",
    "JobDetails",
    "JobList",
    "JobOut",
    "ScheduleList",
    "ScheduleOut",
    "SubmitRequest",
    "json_errors",
]  # fmt: skip


class SubmitRequest(BaseModel):
    """A job to queue: a task from the server's config and its input."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=200, description="A task of the server's config.")
    input: Any = Field(default=None, description="The job's input (any JSON).")
    priority: int | None = Field(
        default=None, ge=-1000, le=1000, description="Higher runs first [the task's]."
    )
    delay: float = Field(default=0.0, ge=0, le=365 * 86400, description="Seconds to wait first.")
    after: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        default_factory=list,
        max_length=100,
        description="Job ids: run once they all succeeded (a failed or cancelled one fails it).",
    )
    after_any: bool = Field(
        default=False, description="Run once the jobs in after ended, whatever their outcome."
    )
    queue: QueueName | None = Field(default=None, description="The queue it waits in [the task's].")
    requires: Requires | None = Field(
        default=None,
        description="Labels the claiming worker must offer (`{labels: {name: value}}`), "
        "besides the task's; a label given here replaces the task's value of it.",
    )

    @field_validator("input")
    @classmethod
    def _is_text(cls, value: Any) -> Any:
        """Refuse input a job could not be given, nor a response show (a lone
        surrogate): stored, it would fail every read of it."""
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


#: The most jobs one ``POST /api/v1/jobs:batch`` queues (one transaction).
MAX_BATCH = 1000


class BatchOut(BaseModel):
    """The ids of a batch's jobs, in the order of its items."""

    ids: list[str]


class ScheduleOut(BaseModel):
    """A schedule and where it is: ``next_at`` is its next tick (epoch
    seconds), ``last_at`` the last one submitted and ``last_job`` its job."""

    name: str
    task: str
    cron: str
    timezone: str
    catch_up: str
    next_at: float
    last_at: float | None
    last_job: str | None
    skipped: int = Field(description="Ticks skipped by catch_up (missed while nothing ran).")


class ScheduleList(BaseModel):
    """Every schedule, by name."""

    schedules: list[ScheduleOut]


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
    run_id: str | None = Field(None, description="The pipeline run the job belongs to, if any.")
    step: str | None = Field(None, description="Its step in that run.")
    item: str | None = Field(None, description="Its fan-out item in that step, if any.")
    sandbox: str | None = Field(
        None, description="The sandbox backend the job runs in, as its task declares [any]."
    )
    queue: str = Field("default", description="The queue it waits in.")
    labels: dict[str, str] | None = Field(
        None, description="The labels a worker must offer to claim it (null: none)."
    )
    waiting: str | None = Field(
        None,
        description="Why a queued job is not claimed: its concurrency key is at its limit, "
        "it waits on other jobs, no live worker serves its queue, offers a label it "
        "requires, or its sandbox.",
    )
    concurrency_key: str | None = Field(None, description="Its concurrency key, if any.")
    concurrency_limit: int | None = Field(None, description="Jobs of that key at once.")
    unique_key: str | None = Field(None, description="Its unique key, if any.")
    unique_while: str | None = Field(None, description="queued or running: while it is unique.")
    after: list[str] | None = Field(None, description="The jobs it runs after, if any.")
    after_any: bool = Field(False, description="Whether any end of those will do.")


class JobDetails(JobOut):
    """A job with its attempts and outputs."""

    attempts_detail: list[dict[str, Any]] = Field(default_factory=list)
    outputs: dict[str, Any] | None = None
    notifications: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Its job-end notifications: where each goes, its state and every try.",
    )


class JobList(BaseModel):
    """A page of jobs, newest first; pass ``next`` as ``after`` for the next page."""

    jobs: list[JobOut]
    next: str | None = None


class ActionResult(BaseModel):
    """What a cancel or retry did: ``cancelled``, ``cancelling``, ``killing``,
    ``queued``, ``already <state>``."""

    id: str
    result: str


class ErrorOut(BaseModel):
    """An error: what went wrong, never echoing what the client sent."""

    error: str


class FieldError(BaseModel):
    """One field at fault."""

    field: str
    message: str


class InvalidOut(ErrorOut):
    """Malformed input: the first field at fault and all of them."""

    field: str | None = None
    fields: list[FieldError] = Field(default_factory=list)


def _error(description: str, model: type[BaseModel] = ErrorOut) -> dict[str, Any]:
    return {"model": model, "description": description}


def json_errors(**errors: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """``ERRORS`` entries spelled out as JSON for a route whose own media type is
    not JSON (FastAPI would document a ``model`` under the route's type)."""
    return {
        int(status): {
            "description": spec["description"],
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{spec['model'].__name__}"}
                }
            },
        }
        for status, spec in errors.items()
    }


#: The error statuses routes answer, for their ``responses=`` (the OpenAPI document).
ERRORS: dict[str, dict[str, Any]] = {
    "unauthorized": _error("Missing or wrong bearer token"),
    "not_found": _error("No such job"),
    "conflict": _error("Idempotency key already used for a different job"),
    "too_large": _error("Request body over `server.max_body`"),
    "invalid": _error("Malformed input; `field` names the field at fault", InvalidOut),
    "bad_body": _error("The body is not parseable JSON"),
    "unavailable": _error("Store unreachable or the server is draining (with `Retry-After`)"),
}

#: What every authenticated API router may answer besides its own statuses.
API_ERRORS: dict[int | str, dict[str, Any]] = {
    401: ERRORS["unauthorized"],
    422: ERRORS["invalid"],
    503: ERRORS["unavailable"],
}
