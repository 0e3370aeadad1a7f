"""``GET /health``: is this server, and the queue behind it, fit for work?

Checks (each ``{"ok": bool, …}``):

* ``store``: the database answers a query;
* ``workers``: live workers seen in the store (embedded or a fleet), and
  whether the embedded worker, if any, is still running;
* ``queue``: runnable jobs waiting and the oldest one's age;
* ``routing``: queued jobs that no live worker can claim, because none
  serves their queue, offers a label they require or the sandbox backend
  their task declares (with the reason, per backend, ``queue Q`` or
  ``label K=V``);
* ``sandboxes``: which sandbox backends are usable on this host, which of
  them the jobs need (the embedded worker's ``local``, and the backend of
  every profile a configured task names), and why a needed one is not
  usable. Checked as ``stockade sandboxes`` does, at most every 30 s.

``down`` (503) when the store does not answer or the server is draining;
``degraded`` (200) when jobs wait with no live worker, the embedded worker
died, the oldest job has waited longer than ``server.queue_age_degraded``,
jobs wait that no live worker can claim, or a needed sandbox backend
is unusable; ``ok`` (200) otherwise.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stockade.errors import StockadeError
from stockade.server.service import Service

__all__ = ["check_health", "router", "sandbox_check"]

router = APIRouter(tags=["health"])


def check_health(service: Service) -> dict[str, Any]:
    """The health document (blocking: it queries the store)."""
    checks: dict[str, Any] = {}
    try:
        service.ping()
        queue = service.queue()
        live = service.live_workers()
        unservable = service.unservable()
    except StockadeError as exc:
        checks["store"] = {"ok": False, "error": exc.message}
        return {"status": "down", "checks": checks}
    checks["store"] = {"ok": True}
    embedded = service.worker
    embedded_ok = embedded.alive or embedded.slots == 0
    checks["workers"] = {
        "ok": embedded_ok and (live > 0 or queue.depth == 0),
        "alive": live,
        "embedded_slots": embedded.slots,
        "embedded_alive": embedded.alive,
    }
    checks["routing"] = {
        "ok": not unservable,
        **(
            {"waiting": {key: f"{n} queued job(s): {reason}"
                         for key, (n, reason) in unservable.items()}}
            if unservable else {}
        ),
    }  # fmt: skip
    limit = service.config.server.queue_age_degraded
    checks["queue"] = {
        "ok": queue.oldest_age < limit,
        "length": queue.depth,
        "oldest_age": round(queue.oldest_age, 3),
    }
    checks["sandboxes"] = sandbox_check(service)
    if service.draining:
        status = "down"
        checks["draining"] = {"ok": False}
    elif all(check["ok"] for check in checks.values()):
        status = "ok"
    else:
        status = "degraded"
    return {"status": status, "checks": checks}


def sandbox_check(service: Service) -> dict[str, Any]:
    """The ``sandboxes`` check: usable backends, needed ones, and why not."""
    usable = service.backends()
    needed = service.needed_backends()
    problems = {
        name: usable[name].reason if name in usable else "no such backend"
        for name in needed
        if name not in usable or not usable[name].usable
    }
    return {
        "ok": not problems,
        "needed": needed,
        "usable": {name: found.usable for name, found in usable.items()},
        **({"problems": problems} if problems else {}),
    }


@router.get(
    "/health",
    summary="Health with dependency checks",
    responses={
        200: {"description": "`ok` or `degraded`"},
        503: {"description": "`down`: the store does not answer or the server drains"},
    },
)
async def health(request: Request) -> JSONResponse:
    """``ok`` / ``degraded`` answer 200, ``down`` 503. Needs no token."""
    service: Service = request.app.state.service
    body = await run_in_threadpool(check_health, service)
    return JSONResponse(body, 503 if body["status"] == "down" else 200)
