"""``POST /hooks/{name}``: a verified delivery starts a job of the hook's task.

Order of checks, each counted as the delivery's outcome:

1. the delivery id and event headers: at most :data:`MAX_HEADER` characters,
   no NUL → ``rejected`` / 422 (counted only: such values cannot be stored);
2. the signature (``X-Hub-Signature-256: sha256=HMAC``) or the shared token
   (``X-Hook-Token``), compared in constant time → ``rejected`` / 401;
3. the delivery id: one seen before (a retry or a replay) starts nothing →
   ``duplicate`` / 200 with the first job's id;
4. the payload must be a JSON object whose strings are text → ``rejected`` / 422;
5. event type and field filters → ``ignored`` / 200;
6. the job, its input mapped from the payload → ``accepted`` / 202.

Anyone can post, so a post refused before its signature is verified writes
only a count and a row of a capped sample (``ServerQueries.record_delivery``).

The job id is derived from the hook and the delivery id, so two copies of
one delivery racing each other still make one job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stockade.errors import StockadeError
from stockade.jsontext import text_problem
from stockade.server.models import ERRORS, ErrorOut
from stockade.server.service import Service
from stockade.spec.server import WebhookSpec
from stockade.store.serverq import keyed_job_id

__all__ = [
    "MAX_HEADER",
    "header_problem",
    "map_input",
    "matches",
    "pointer",
    "router",
    "signature_ok",
]

router = APIRouter(tags=["webhooks"])
_NO_HOOK = {"model": ErrorOut, "description": "No such webhook"}

_MISSING = object()
_TEMPLATE = re.compile(r"\{(/[^{}]*)\}")

#: The longest delivery id or event name a delivery may send (their columns' size).
MAX_HEADER = 200


def header_problem(name: str, value: str | None) -> str | None:
    """Why header ``name``'s value cannot be recorded, or ``None``."""
    if value is None:
        return None
    if len(value) > MAX_HEADER:
        return f"header {name} is longer than {MAX_HEADER} characters"
    if "\0" in value:
        return f"header {name} contains a NUL character"
    return None


def pointer(doc: Any, path: str) -> Any:
    """The value at JSON pointer ``path`` (RFC 6901), or ``_MISSING``."""
    if path == "":
        return doc
    for raw in path.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return _MISSING
    return doc


def _value(payload: Any, spec: Any) -> Any:
    if isinstance(spec, str) and spec.startswith("/"):
        found = pointer(payload, spec)
        return None if found is _MISSING else found
    if isinstance(spec, str) and _TEMPLATE.search(spec):

        def one(match: re.Match[str]) -> str:
            found = pointer(payload, match.group(1))
            if found is _MISSING or found is None:
                return ""
            return found if isinstance(found, str) else json.dumps(found)

        return _TEMPLATE.sub(one, spec)
    return spec


def map_input(payload: Any, mapping: dict[str, Any] | None) -> Any:
    """The job input the hook's ``input:`` mapping makes of ``payload``."""
    if mapping is None:
        return payload
    return {key: _value(payload, spec) for key, spec in mapping.items()}


def matches(hook: WebhookSpec, event: str | None, payload: Any) -> str | None:
    """Why the delivery is not wanted, or ``None`` if it is."""
    if hook.events and event not in hook.events:
        return "event not wanted"
    for path, wanted in hook.filters.items():
        if pointer(payload, path) != wanted:
            return f"filter {path} did not match"
    return None


def signature_ok(hook: WebhookSpec, key: str, body: bytes, headers: Any) -> bool:
    """Whether the delivery proves it knows the hook's secret (constant time)."""
    if hook.auth == "token":
        given = headers.get("x-hook-token", "")
        return bool(given) and hmac.compare_digest(given.encode(), key.encode())
    given = headers.get("x-hub-signature-256", "")
    expected = "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


@router.post(
    "/hooks/{name}",
    status_code=202,
    summary="Deliver a webhook",
    responses={
        200: {"description": "Ignored (event or filters not matched) or a duplicate delivery"},
        401: ERRORS["unauthorized"],
        404: _NO_HOOK,
        413: ERRORS["too_large"],
        422: ERRORS["invalid"],
        503: ERRORS["unavailable"],
    },
)
async def deliver(name: str, request: Request) -> JSONResponse:
    """Verify a delivery and start the hook's task with the mapped input."""
    service: Service = request.app.state.service
    hook = service.config.webhooks.get(name)
    if hook is None:
        return JSONResponse({"error": "no such webhook"}, 404)
    body = await request.body()
    event = request.headers.get(hook.event_header)
    delivery = request.headers.get(hook.delivery_header) or None

    async def record(outcome: str, status: int, reason: str | None = None,
                     job_id: str | None = None, *, verified: bool = True,
                     keep: bool = True) -> None:  # fmt: skip
        await run_in_threadpool(
            service.sq.record_delivery, name, delivery, event, outcome, status,
            reason=reason, job_id=job_id, verified=verified, keep=keep,
        )  # fmt: skip

    for header, value in ((hook.delivery_header, delivery), (hook.event_header, event)):
        problem = header_problem(header, value)
        if problem is not None:
            await record("rejected", 422, keep=False)
            return JSONResponse({"error": problem, "field": f"header.{header}"}, 422)
    try:
        key = hook.secret.read(f"webhook {name}")
    except StockadeError:
        await record("rejected", 503, "secret unavailable", verified=False)
        return JSONResponse({"error": "webhook not available"}, 503)
    if not signature_ok(hook, key, body, request.headers):
        await record("rejected", 401, "bad signature", verified=False)
        return JSONResponse({"error": "unauthorized"}, 401)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        payload = _MISSING
    if not isinstance(payload, dict):
        await record("rejected", 422, "payload is not a JSON object")
        return JSONResponse({"error": "payload must be a JSON object", "field": "body"}, 422)
    problem = text_problem(payload, "payload")
    if problem is not None:
        await record("rejected", 422, "payload is not text")
        return JSONResponse({"error": problem, "field": "body"}, 422)
    why = matches(hook, event, payload)
    if why is not None:
        await record("ignored", 200, why)
        return JSONResponse({"accepted": False, "reason": why}, 200)
    key = delivery or secrets.token_hex(16)
    job, created = await service.submit(
        hook.task, map_input(payload, hook.input), priority=hook.priority,
        key=key, scope=f"hook:{name}",
    )  # fmt: skip
    if not created:
        seen = job.id == keyed_job_id(f"hook:{name}", key)
        why = "delivery seen before" if seen else "a live job has the task's unique key"
        await record("duplicate", 200, why, job.id)
        return JSONResponse({"accepted": False, "duplicate": True, "job_id": job.id}, 200)
    await record("accepted", 202, None, job.id)
    return JSONResponse({"accepted": True, "job_id": job.id}, 202)
