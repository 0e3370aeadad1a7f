"""``GET /api/v1/workers``: the live workers, what they serve, how busy they are."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from stockade.server.models import API_ERRORS
from stockade.server.service import Service

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/workers", tags=["workers"], responses=API_ERRORS)


class Slots(BaseModel):
    busy: int
    total: int


class WorkerOut(BaseModel):
    """One live worker (heard from within the last minute, not stopped)."""

    name: str
    host: str
    pid: int
    queues: list[str] | None = Field(description="The queues it serves (null: every queue).")
    labels: dict[str, str] = Field(description="The labels it offers.")
    sandboxes: list[str] | None = Field(description="The sandbox backends it offers (null: any).")
    slots: Slots
    running: list[str] = Field(description="The ids of the jobs it runs.")
    heartbeat_age: float = Field(description="Seconds since its last heartbeat.")
    started_at: float
    version: str | None = Field(description="Its stockade version (null: older than 0.1).")


class WorkerList(BaseModel):
    workers: list[WorkerOut]


@router.get("", response_model=WorkerList, summary="List live workers")
async def list_workers(request: Request) -> dict[str, Any]:
    """Each live worker: name, host, queues, labels, sandboxes, slots busy and
    total, running jobs, heartbeat age, version."""
    from stockade.engine.workersview import live_workers

    service: Service = request.app.state.service
    return {"workers": await run_in_threadpool(live_workers, service.store)}
