"""The live workers as people and clients see them (``stockade workers``,
``GET /api/v1/workers``, the dashboard's workers page).

One view for every face, from the store's ``workers`` rows and the jobs
they hold: what each worker serves (queues, labels, sandboxes), how busy
it is, how long ago it was heard from, and which stockade it runs.
"""

from __future__ import annotations

from typing import Any

from stockade.store import Store
from stockade.store.records import LIVE_WITHIN

__all__ = ["live_workers"]


def live_workers(store: Store, alive_within: float = LIVE_WITHIN) -> list[dict[str, Any]]:
    """Each worker heard from within ``alive_within`` seconds and not stopped,
    oldest first, as JSON-ready data."""
    queries = store.queries
    workers = queries.workers(alive_within=alive_within)
    running = queries.running_by_worker() if workers else {}
    now = queries.now()
    views: list[dict[str, Any]] = []
    for worker in workers:
        held = running.get(worker.id, [])
        views.append(
            {
                "name": worker.id,
                "host": worker.hostname,
                "pid": worker.pid,
                "queues": worker.queues,
                "labels": dict(worker.labels or {}),
                "sandboxes": worker.sandboxes,
                "slots": {"busy": min(len(held), worker.slots), "total": worker.slots},
                "running": held,
                "heartbeat_age": round(max(0.0, now - worker.last_seen), 3),
                "started_at": worker.started_at,
                "version": worker.version,
            }
        )
    return views
