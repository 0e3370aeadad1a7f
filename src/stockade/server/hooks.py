"""``POST /hooks/{name}``: a verified delivery starts a job of the hook's task.

Order of checks, each recorded as the delivery's outcome:

1. the signature (``X-Hub-Signature-256: sha256=HMAC``) or the shared token
   (``X-Hook-Token``), compared in constant time → ``rejected`` / 401;
2. the delivery id: one seen before (a retry or a replay) starts nothing →
   ``duplicate`` / 200 with the first job's id;
3. the payload must be a JSON object → ``rejected`` / 422;
4. event type and field filters → ``ignored`` / 200;
5. the job, its input mapped from the payload → ``accepted`` / 202.

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
from stockade.server.models import ERRORS, ErrorOut
from stockade.server.service import Service
from stockade.spec.server import WebhookSpec

__all__ = ["map_input", "matches", "pointer", "router", "signature_ok"]

router = APIRouter(tags=["webhooks"])
_NO_HOOK = {"model": ErrorOut, "description": "No such webhook"}

_MISSING = object()
_TEMPLATE = re.compile(r"\{(/[^{}]*)\}")


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
                     job_id: str | None = None) -> None:  # fmt: skip
        await run_in_threadpool(
            service.sq.record_delivery, name, delivery, event, outcome, status,
            reason=reason, job_id=job_id,
        )  # fmt: skip

    try:
        key = hook.secret.read(f"webhook {name}")
    except StockadeError:
        await record("rejected", 503, "secret unavailable")
        return JSONResponse({"error": "webhook not available"}, 503)
    if not signature_ok(hook, key, body, request.headers):
        await record("rejected", 401, "bad signature")
        return JSONResponse({"error": "unauthorized"}, 401)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        payload = _MISSING
    if not isinstance(payload, dict):
        await record("rejected", 422, "payload is not a JSON object")
        return JSONResponse({"error": "payload must be a JSON object", "field": "body"}, 422)
    why = matches(hook, event, payload)
    if why is not None:
        await record("ignored", 200, why)
        return JSONResponse({"accepted": False, "reason": why}, 200)
    job, created = await service.submit(
        hook.task, map_input(payload, hook.input), priority=hook.priority,
        key=delivery or secrets.token_hex(16), scope=f"hook:{name}",
    )  # fmt: skip
    if not created:
        await record("duplicate", 200, "delivery seen before", job.id)
        return JSONResponse({"accepted": False, "duplicate": True, "job_id": job.id}, 200)
    await record("accepted", 202, None, job.id)
    return JSONResponse({"accepted": True, "job_id": job.id}, 202)
