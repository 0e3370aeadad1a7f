"""``/api/v1/jobs``: submit, list, get, cancel, retry, outputs, artifacts, events and logs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from stockade import tracing
from stockade.jsontext import repaired
from stockade.server.models import (
    API_ERRORS,
    ERRORS,
    MAX_BATCH,
    ActionResult,
    BatchOut,
    JobDetails,
    JobList,
    JobOut,
    SubmitRequest,
    json_errors,
)
from stockade.server.service import Service, job_view
from stockade.server.sse import log_stream
from stockade.store.search import MAX_QUERY, SEARCH_WINDOW
from stockade.store.serverq import keyed_job_id
from stockade.store.states import JobState

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/jobs",
    tags=["jobs"],
    responses=API_ERRORS,
)
#: The extra error statuses of the routes about one job.
ONE_JOB: dict[int | str, dict[str, Any]] = {404: ERRORS["not_found"]}

#: The largest id or attempt number the store holds (a 64-bit integer column).
MAX_INT = 2**63 - 1

StateName = Annotated[list[JobState] | None, Query(description="Only jobs in these states.")]


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


@router.post(
    "",
    status_code=201,
    response_model=JobOut,
    summary="Queue a job",
    responses={
        200: {
            "model": JobOut,
            "description": "The job an earlier request with this key made, or the live job "
            "with the task's unique key",
        },
        400: ERRORS["bad_body"],
        409: ERRORS["conflict"],
        413: ERRORS["too_large"],
    },
)
async def submit(
    body: SubmitRequest,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """Queue a job of a configured task. With an ``Idempotency-Key`` header a
    repeated request returns the job the first one made (200, not 201); the
    same key with a different task or input is a conflict (409). A task with
    a ``unique`` key whose value matches a live job returns that job (200).
    ``after`` names jobs it runs after (an unknown one: 422)."""
    service = _service(request)
    # A caller's W3C `traceparent` header makes this span (and the job's) part of its trace.
    with tracing.span("stockade.submit", request.headers, {"stockade.task": body.task}) as span:
        job, created = await service.submit(
            body.task, body.input, priority=body.priority, delay=body.delay, key=idempotency_key,
            after=body.after, after_any=body.after_any, queue=body.queue,
            labels=None if body.requires is None else body.requires.labels,
        )  # fmt: skip
        if span is not None:
            span.set_attribute("stockade.job", job.id)
    keyed = idempotency_key is not None and job.id == keyed_job_id("api", idempotency_key)
    if keyed and not created and (job.task != body.task or job.input != body.input):
        raise HTTPException(409, "idempotency key already used for a different job")
    # The view is JobOut by construction: answered as is, not validated again.
    return JSONResponse(
        job_view(job), 201 if created else 200, {"Location": f"/api/v1/jobs/{job.id}"}
    )


@router.post(
    ":batch",
    status_code=201,
    response_model=BatchOut,
    summary="Queue many jobs",
    responses={400: ERRORS["bad_body"], 413: ERRORS["too_large"]},
)
def submit_batch(
    request: Request,
    body: Annotated[list[SubmitRequest], Body(min_length=1, max_length=MAX_BATCH)],
) -> dict[str, Any] | JSONResponse:
    """Queue up to 1,000 jobs in one transaction: all of them, or none when
    one is invalid (422; ``field`` names its index, as ``body.INDEX.FIELD``).
    Each item is a submit body; the answer lists the ids in item order."""
    service = _service(request)
    new = []
    for index, item in enumerate(body):
        if item.task not in service.config.tasks:
            return JSONResponse(
                {"error": f"item {index}: unknown task {item.task!r}",
                 "field": f"body.{index}.task"},
                422,
            )  # fmt: skip
        new.append(service.new_job(item.task, item.input, priority=item.priority,
                                   delay=item.delay))  # fmt: skip
    return {"ids": service.store.jobs.submit(new)}


@router.get("", response_model=JobList, summary="List jobs")
def list_jobs(
    request: Request,
    state: StateName = None,
    task: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after: Annotated[str | None, Query(max_length=40, description="A cursor: `next`.")] = None,
    run: Annotated[
        str | None, Query(max_length=40, description="Only the jobs of this pipeline run.")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_QUERY,
            description="Search: jobs whose id starts with it, or (among the newest "
            f"{SEARCH_WINDOW:,}) whose task or command holds it, ignoring case.",
        ),
    ] = None,
) -> dict[str, Any]:
    """Jobs newest first, filtered by state, task, pipeline run and a search, a page at a time."""
    states = [s.value for s in state or []]
    search = q.strip() if q else None
    jobs = _service(request).page(states, task, limit + 1, after, run, search or None)
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return {"jobs": [job_view(j) for j in jobs], "next": jobs[-1].id if more else None}


@router.get("/{job_id}", response_model=JobDetails, summary="Get a job", responses=ONE_JOB)
def get_job(job_id: str, request: Request) -> dict[str, Any]:
    """One job with its attempts and outputs."""
    job, attempts, outputs = _service(request).details(job_id)
    return {
        **job_view(job),
        "attempts_detail": [repaired(_attempt(a.to_dict())) for a in attempts],
        "outputs": outputs,
        "notifications": _service(request).store.queries.notifications(job.id),
    }


def _attempt(data: dict[str, Any]) -> dict[str, Any]:
    """An attempt without its whole result record, but with what it used
    (``usage``, see docs/http.md), where its hang dump is (``dump``) and
    the files it kept (``artifacts``: name, size, sha256)."""
    result = data.pop("result", None) or {}
    data["usage"] = result.get("usage")
    data["dump"] = result.get("dump")
    data["artifacts"] = result.get("artifacts") or []
    return data


@router.get("/{job_id}/outputs", summary="A job's outputs", responses=ONE_JOB)
def outputs(job_id: str, request: Request) -> dict[str, Any]:
    """The outputs of the job's succeeded attempt (``null`` until then)."""
    _, _, data = _service(request).details(job_id)
    return {"outputs": data}


@router.get("/{job_id}/artifacts", summary="A job's artifacts", responses=ONE_JOB)
def artifacts(job_id: str, request: Request) -> dict[str, Any]:
    """The files its latest attempt that kept any kept: name, size, sha256, url."""
    found, attempt, items = _service(request).artifacts(job_id)
    base = f"/api/v1/jobs/{found}/artifacts/"
    return {
        "attempt": attempt,
        "artifacts": [{**item, "url": base + quote(str(item["name"]))} for item in items],
    }


@router.get(
    "/{job_id}/artifacts/{name:path}",
    summary="Download one artifact",
    responses={404: ERRORS["not_found"], 200: {"content": {"application/octet-stream": {}}}},
    response_class=StreamingResponse,
)
def artifact(job_id: str, name: str, request: Request) -> StreamingResponse:
    """The artifact's bytes, as an attachment named after it. ``name`` is
    looked up among the job's artifacts, never used as a path."""
    from stockade.engine.artifacts import ArtifactNotFound

    try:
        item, fh = _service(request).artifact(job_id, name)
    except ArtifactNotFound:
        raise HTTPException(404, "no such artifact") from None

    def chunks() -> Iterator[bytes]:
        with fh:
            while block := fh.read(1 << 20):
                yield block

    filename = name.rsplit("/", 1)[-1]
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                         for c in filename)  # fmt: skip
    headers = {
        "Content-Disposition": f'attachment; filename="{ascii_name}"; '
        f"filename*=UTF-8''{quote(filename, safe='')}",
        "Content-Length": str(item["size"]),
        "X-Content-SHA256": str(item["sha256"]),
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)


@router.get("/{job_id}/events", summary="A job's lifecycle events", responses=ONE_JOB)
def events(job_id: str, request: Request) -> dict[str, Any]:
    """Queued, started, finished, retried… in order."""
    return {"events": _service(request).events(job_id)}


@router.post(
    "/{job_id}/cancel", response_model=ActionResult, summary="Cancel a job", responses=ONE_JOB
)
def cancel(
    job_id: str,
    request: Request,
    force: Annotated[bool, Query(description="Kill a running job now: SIGKILL, no grace.")] = False,
) -> dict[str, str]:
    """Cancel a queued job now, or ask a running one's worker to stop it (stop
    signal, grace, SIGKILL). ``?force=true``, or a second cancel while it
    stops, kills it at once (SIGKILL to all its processes, no grace)."""
    service = _service(request)
    job = service.job(job_id)
    return {"id": job.id, "result": service.cancel(job.id, force=force)}


@router.post(
    "/{job_id}/retry", response_model=ActionResult, summary="Retry a job", responses=ONE_JOB
)
def retry(job_id: str, request: Request) -> dict[str, str]:
    """Queue a failed or cancelled job again with a fresh set of attempts."""
    service = _service(request)
    job = service.job(job_id)
    return {"id": job.id, "result": service.retry(job.id)}


@router.get(
    "/{job_id}/logs",
    response_class=PlainTextResponse,
    summary="A job's whole log",
    responses=json_errors(
        **{"401": ERRORS["unauthorized"], "404": ERRORS["not_found"]},
        **{"422": ERRORS["invalid"], "503": ERRORS["unavailable"]},
    ),
)
def logs(
    job_id: str, request: Request, attempt: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None
) -> str:
    """Everything the job printed so far (masked), stdout and stderr interleaved."""
    service = _service(request)
    job = service.job(job_id)
    parts: list[str] = []
    after = 0
    while True:
        chunks = service.logs(job.id, after, attempt)
        parts += [c.text for c in chunks]
        if len(chunks) < 1000:
            return "".join(parts)
        after = chunks[-1].id


@router.get(
    "/{job_id}/logs/stream",
    summary="Follow a job's log (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **ONE_JOB},
)
async def stream_logs(
    job_id: str,
    request: Request,
    last_event_id: Annotated[str | None, Header(max_length=40)] = None,
    after: Annotated[int, Query(ge=0, le=MAX_INT, description="Resume after this chunk id.")] = 0,
) -> StreamingResponse:
    """Each log chunk as an SSE ``log`` event whose ``id`` is the chunk id, then an
    ``end`` event with the job's final state. Reconnecting with ``Last-Event-ID``
    resumes after the last chunk received."""
    from starlette.concurrency import run_in_threadpool

    service = _service(request)
    job = await run_in_threadpool(service.job, job_id)
    start = after
    if last_event_id and last_event_id.isdigit():
        start = min(int(last_event_id), MAX_INT)
    return StreamingResponse(
        log_stream(service, job.id, start, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
