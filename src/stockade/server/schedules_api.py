"""``/api/v1/schedules``: the store's schedules with their next and last tick."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from stockade.server.models import API_ERRORS, ScheduleList
from stockade.server.service import Service

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"], responses=API_ERRORS)


@router.get("", response_model=ScheduleList, summary="List schedules")
def list_schedules(request: Request) -> dict[str, Any]:
    """Every schedule by name: its cron, time zone, catch-up, next tick, and
    the last tick submitted with its job (times in epoch seconds)."""
    service: Service = request.app.state.service
    return {"schedules": [s.to_dict() for s in service.store.schedules.list()]}
