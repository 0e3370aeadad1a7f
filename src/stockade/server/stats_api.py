"""``GET /api/v1/stats/ends``: jobs that ended per minute, by final state.

What the dashboard's job list draws as its chart of the last hour: one
grouped query over the jobs that ended since (an index on ``finished_at``
keeps it to those rows).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from stockade.server.models import ERRORS
from stockade.server.service import Service
from stockade.store import fleetq

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/stats",
    tags=["stats"],
    responses={401: ERRORS["unauthorized"], 422: ERRORS["invalid"], 503: ERRORS["unavailable"]},
)


@router.get("/ends", summary="Jobs ended per minute")
async def ends(
    request: Request,
    minutes: int = Query(60, ge=1, le=1440, description="How many minutes, up to now."),
) -> dict[str, Any]:
    """Jobs that ended in each of the last ``minutes`` minutes, by final state:
    ``{"start": epoch of the first minute, "minutes": N, "series": {state: [counts]}}``."""
    service: Service = request.app.state.service
    return await run_in_threadpool(fleetq.outcomes_per_minute, service.store.db, minutes)
