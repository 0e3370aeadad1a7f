"""The FastAPI application: routes, authentication, errors and middleware.

Every route but ``/health`` and the webhooks (which prove themselves with a
signature) needs ``Authorization: Bearer TOKEN``; a missing or wrong one
gets the same bare 401. The dashboard's page and static files (``/``,
``/ui/…``) are public: they hold no data, and every API call the page makes
carries the token. Validation errors are 422 with the field at fault
and never echo the value sent; so is a URL holding a NUL (``%00``).
Stockade errors map to statuses: unknown job 404, bad usage 422, store
unreachable 503.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope

from stockade.errors import (
    AmbiguousId,
    DependencyError,
    InputError,
    JobNotFound,
    StockadeError,
    StoreUnavailable,
    UsageError,
)  # fmt: skip
from stockade.server import (
    health,
    hooks,
    jobs_api,
    metrics,
    runs_api,
    schedules_api,
    stats_api,
    workers_api,
)
from stockade.server.limits import BodyLimit, Drain, NoNul
from stockade.server.service import Service

__all__ = ["create_app"]

_UNAUTHORIZED = {"error": "unauthorized"}

STATIC = Path(__file__).with_name("static")
#: Headers of the dashboard's files: its own scripts and styles only, no framing.
UI_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _UiFiles(StaticFiles):
    """The dashboard's static files, with :data:`UI_HEADERS`."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(UI_HEADERS)
        return response


async def require_token(request: Request) -> None:
    """The bearer-token check every protected route depends on (async: a sync
    dependency would cost every request a trip through the thread pool)."""
    service: Service = request.app.state.service
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not service.tokens.accepts(token.strip()):
        raise HTTPException(401, headers={"WWW-Authenticate": "Bearer"})


def create_app(service: Service) -> Any:
    """The ASGI application serving ``service`` (FastAPI inside the middleware)."""
    app = FastAPI(
        title="stockade",
        version="1",
        description="Run any command as a supervised, sandboxed, durable job.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.service = service
    auth = [Depends(require_token)]
    app.include_router(jobs_api.router, dependencies=auth)
    app.include_router(runs_api.router, dependencies=auth)
    app.include_router(stats_api.router, dependencies=auth)
    app.include_router(workers_api.router, dependencies=auth)
    app.include_router(schedules_api.router, dependencies=auth)
    app.include_router(metrics.router, dependencies=auth)
    app.include_router(health.router)
    app.include_router(hooks.router)

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    _dashboard(app)
    _handlers(app)
    limited = BodyLimit(NoNul(app), service.config.server.max_body)
    return Drain(limited, lambda: service.draining)


def _dashboard(app: FastAPI) -> None:
    """The web dashboard: ``/`` is its page, ``/ui/…`` its scripts and styles."""

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=UI_HEADERS)

    @app.get("/ui", include_in_schema=False)
    def ui() -> RedirectResponse:
        return RedirectResponse("/ui/")

    app.mount("/ui", _UiFiles(directory=STATIC, html=True), name="ui")


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 401:
            return JSONResponse(_UNAUTHORIZED, 401, headers=exc.headers)
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {"field": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
            for err in exc.errors()
        ]
        first = fields[0]["field"] if fields else None
        error = "invalid request"
        if first is not None and first.startswith("body") and not _is_json(request):
            error = "invalid request: send the body as JSON with Content-Type: application/json"
        return JSONResponse({"error": error, "field": first, "fields": fields}, 422)

    @app.exception_handler(StockadeError)
    async def stockade_error(request: Request, exc: StockadeError) -> JSONResponse:
        if isinstance(exc, JobNotFound):
            return JSONResponse({"error": "no such job"}, 404)
        if isinstance(exc, AmbiguousId):  # the ids it matches, never the prefix sent
            body = {"error": "no such job: the id prefix is ambiguous or too short"}
            return JSONResponse(body | {"candidates": exc.candidates}, 404)
        if isinstance(exc, StoreUnavailable):
            return JSONResponse({"error": "store unavailable"}, 503, {"Retry-After": "5"})
        if isinstance(exc, DependencyError):
            return JSONResponse({"error": exc.message, "field": "after"}, 422)
        if isinstance(exc, UsageError):
            field = "input" if isinstance(exc, InputError) else "task"
            return JSONResponse({"error": exc.message, "field": field}, 422)
        return JSONResponse({"error": "internal error"}, 500)


def _is_json(request: Request) -> bool:
    """Whether the request says its body is JSON (``application/json`` or a
    ``+json`` type); FastAPI parses a body as JSON only then."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    main, _, sub = kind.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))
