"""``/api/v1/runs``: start a pipeline run, list runs, get one with per-step
progress and test results, cancel it, list its jobs.

A run started here executes inside the server process, in its event loop,
exactly as ``stockade run`` executes one (:class:`stockade.engine.runs.PipelineRun`):
the response comes back as soon as the run is recorded (``queued``), and the
run is followed with ``GET /api/v1/runs/{id}``. A cancel sets the run's
``cancel_requested`` flag; the scheduler that runs it, in this process or
another, notices within a second and stops every job as Ctrl-C does.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from stockade.engine.runs import PipelineRun, RunOptions
from stockade.engine.runview import cancel_run, run_jobs, run_view, runs_page, summary
from stockade.errors import ConfigError, RunNotFound
from stockade.server.models import API_ERRORS, ERRORS, ActionResult, JobList
from stockade.server.service import Service, job_view

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/runs",
    tags=["runs"],
    responses=API_ERRORS,
)
ONE_RUN: dict[int | str, dict[str, Any]] = {
    404: {"model": ERRORS["not_found"]["model"], "description": "No such run"}
}
RunId = Annotated[str, Field(max_length=40)]


class RunRequest(BaseModel):
    """A run to start: a pipeline of the server's config and how to run it."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="A pipeline of the server's config [the only one defined].",
    )  # fmt: skip
    jobs: int | None = Field(default=None, ge=1, le=1024, description="Jobs at once [auto].")
    keep_going: bool = Field(default=False, description="Run what does not depend on a failure.")
    only: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=100, description="Only these steps (and what they need)."
    )
    params: dict[
        Annotated[str, Field(min_length=1, max_length=200)],
        Annotated[str, Field(max_length=10_000)] | int | bool,
    ] = Field(
        default_factory=dict, max_length=100,
        description="The pipeline's params, checked against its declarations (as --set).",
    )  # fmt: skip


class StepProgress(BaseModel):
    """One step: its status, and its jobs in all and by status."""

    status: str
    reason: str | None = None
    jobs: int = 0
    counts: dict[str, int] = Field(default_factory=dict)


class RunOut(BaseModel):
    """A run: state, times, per-step progress, test counts by status."""

    id: str
    pipeline: str
    state: str
    reason: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    duration: float | None
    options: dict[str, Any]
    source_run: str | None
    cancel_requested: bool
    steps: dict[str, StepProgress]
    tests: dict[str, int]
    warnings: list[str] = Field(default_factory=list)


class RunJobOut(BaseModel):
    """One job of a run, as the pipeline saw it (``status`` may be ``skipped``)."""

    id: str
    job: str
    step: str | None
    item: str | None
    status: str
    state: str
    reason: str | None
    exit_code: int | None
    attempts: int
    duration: float | None
    outputs: dict[str, Any] | None


class FailedTest(BaseModel):
    """A failed test with its output."""

    job_id: str | None
    package: str
    test: str
    status: str
    elapsed: float
    output: str


class RunDetails(RunOut):
    """A run with its jobs, step by step, and its failed tests."""

    jobs: list[RunJobOut]
    failed_tests: list[FailedTest]


class TimelineBar(BaseModel):
    """One job on the timeline; ``start`` and ``end`` in seconds from the run's start."""

    id: str
    job: str
    step: str | None
    status: str
    lane: int
    start: float
    end: float
    critical: bool


class TimelineOut(BaseModel):
    """A run's jobs as bars on lanes (derived: the store does not record
    slots), and its critical path (job ids, derived from timing)."""

    run_id: str
    span: float
    lanes: int
    lanes_from: str
    bars: list[TimelineBar]
    critical_path: list[str]


class RunList(BaseModel):
    """A page of runs, newest first; pass ``next`` as ``after`` for the next page."""

    runs: list[RunOut]
    next: str | None = None


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _running(request: Request) -> set[asyncio.Task[Any]]:
    """The runs this server executes (kept referenced until they end)."""
    tasks: set[asyncio.Task[Any]] | None = getattr(request.app.state, "pipeline_runs", None)
    if tasks is None:
        tasks = request.app.state.pipeline_runs = set()
    return tasks


@router.post("", status_code=201, response_model=RunOut, summary="Start a pipeline run",
             responses={400: ERRORS["bad_body"], 413: ERRORS["too_large"]})  # fmt: skip
async def start(body: RunRequest, request: Request, response: Response) -> dict[str, Any]:
    """Start a run of a configured pipeline in the server; it is ``queued``
    until its scheduler starts, then ``running``."""
    from starlette.concurrency import run_in_threadpool

    from stockade.pipeline.expr import to_text
    from stockade.spec.params import resolve_params

    service = _service(request)
    try:
        name, spec = service.config.pipeline(body.pipeline)
    except ConfigError as exc:
        raise HTTPException(422, exc.message) from None
    unknown = [step for step in body.only if step not in spec.steps]
    if unknown:
        raise HTTPException(422, f"only: unknown step {unknown[0]!r} in pipeline {name!r}")
    try:
        given = [f"{key}={to_text(value)}" for key, value in body.params.items()]
        params = resolve_params(spec.params, given, name)
    except ValueError as exc:
        raise HTTPException(422, str(exc).removeprefix("--set ")) from None
    params = {key: value for key, value in params.items() if key in body.params}
    options = RunOptions(body.jobs, body.keep_going, tuple(body.only), params)
    run = PipelineRun(
        service.store, service.config, name, spec, options=options, queued=True, own_store=False
    )
    await run_in_threadpool(run.create)
    task = asyncio.get_running_loop().create_task(run.execute(), name=f"run-{run.run_id}")
    tasks = _running(request)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    response.headers["Location"] = f"/api/v1/runs/{run.run_id}"
    return await run_in_threadpool(summary, service.store, run.run_id)


@router.get("", response_model=RunList, summary="List runs")
def list_runs(
    request: Request,
    pipeline: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after: Annotated[str | None, Query(max_length=40, description="A cursor: `next`.")] = None,
) -> dict[str, Any]:
    """Runs newest first, a page at a time."""
    runs = runs_page(_service(request).store, limit=limit + 1, after=after, pipeline=pipeline)
    more = len(runs) > limit
    runs = runs[:limit]
    return {"runs": runs, "next": runs[-1]["id"] if more else None}


@router.get("/{run_id}", response_model=RunDetails, summary="Get a run", responses=ONE_RUN)
def get_run(run_id: str, request: Request) -> dict[str, Any]:
    """One run: state, per-step progress, its jobs, test counts and failed tests."""
    try:
        return run_view(_service(request).store, run_id)
    except RunNotFound:
        raise HTTPException(404, "no such run") from None


@router.get(
    "/{run_id}/timeline", response_model=TimelineOut, summary="A run's timeline", responses=ONE_RUN
)
def get_timeline(run_id: str, request: Request) -> dict[str, Any]:
    """Each job that ran as a bar on a lane over time, with the critical path."""
    from stockade.engine.timeline import for_run

    try:
        return for_run(_service(request).store, run_id).to_dict()
    except RunNotFound:
        raise HTTPException(404, "no such run") from None


@router.post(
    "/{run_id}/cancel", response_model=ActionResult, summary="Cancel a run", responses=ONE_RUN
)
def cancel(run_id: str, request: Request) -> dict[str, str]:
    """Ask the run's scheduler to stop every job (``cancelling``), or say it is
    already over (``already <state>``)."""
    try:
        found, what = cancel_run(_service(request).store, run_id)
    except RunNotFound:
        raise HTTPException(404, "no such run") from None
    return {"id": found, "result": what}


@router.get("/{run_id}/jobs", response_model=JobList, summary="A run's jobs", responses=ONE_RUN)
def list_run_jobs(run_id: str, request: Request) -> dict[str, Any]:
    """Every job of the run as the jobs API shows jobs (`GET /api/v1/jobs/{id}` for one)."""
    try:
        jobs = run_jobs(_service(request).store, run_id)
    except RunNotFound:
        raise HTTPException(404, "no such run") from None
    return {"jobs": [job_view(j) for j in jobs], "next": None}
