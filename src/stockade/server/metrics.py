"""``GET /metrics``: Prometheus text computed from the store at scrape time.

Nothing is counted in this process's memory: every family is read from the
database when Prometheus scrapes, so several server processes sharing one
database all report the same, right figures.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from stockade.server.models import ERRORS
from stockade.server.service import Service
from stockade.store import fleetq
from stockade.store.database import Database
from stockade.store.records import WorkerRecord
from stockade.store.serverq import DURATION_BUCKETS, USAGE_BUCKETS

__all__ = ["StoreCollector", "render", "router"]

router = APIRouter(
    tags=["metrics"], responses={401: ERRORS["unauthorized"], 503: ERRORS["unavailable"]}
)


class StoreCollector(Collector):
    """Metric families from the store's real counts."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        sq = self.service.sq
        jobs = GaugeMetricFamily(
            "stockade_jobs", "Jobs by state and task.", labels=["state", "task"]
        )
        for (state, task), count in sorted(sq.jobs_by_state_task().items()):
            jobs.add_metric([state, task], count)
        yield jobs
        attempts = CounterMetricFamily(
            "stockade_attempts", "Finished attempts by outcome.", labels=["outcome"]
        )
        for outcome, count in sorted(sq.attempts_by_outcome().items()):
            attempts.add_metric([outcome], count)
        yield attempts
        counts, total, seconds = sq.duration_histogram()
        buckets = [(str(b), c) for b, c in zip(DURATION_BUCKETS, counts, strict=True)]
        yield HistogramMetricFamily(
            "stockade_attempt_duration_seconds", "Attempt durations.",
            buckets=[*buckets, ("+Inf", total)], sum_value=seconds,
        )  # fmt: skip
        yield from usage_families(sq.usage_histograms())
        queue = sq.queue()
        yield GaugeMetricFamily("stockade_queue_depth", "Runnable queued jobs.", value=queue.depth)
        yield GaugeMetricFamily(
            "stockade_queue_oldest_age_seconds", "Wait of the oldest runnable job.",
            value=queue.oldest_age,
        )  # fmt: skip
        hooks = CounterMetricFamily(
            "stockade_webhook_deliveries", "Webhook deliveries by hook and outcome.",
            labels=["hook", "outcome"],
        )  # fmt: skip
        for (hook, outcome), count in sorted(sq.delivery_counts().items()):
            hooks.add_metric([hook, outcome], count)
        yield hooks
        workers = self.service.store.queries.workers(alive_within=2 * self.service.lease)
        yield GaugeMetricFamily("stockade_workers_alive", "Live workers.", value=len(workers))
        yield GaugeMetricFamily(
            "stockade_worker_slots", "Slots of live workers.", value=sum(w.slots for w in workers)
        )
        running = sum(n for (state, _), n in sq.jobs_by_state_task().items() if state == "running")
        yield GaugeMetricFamily("stockade_slots_busy", "Jobs running now.", value=running)
        yield CounterMetricFamily(
            "stockade_log_bytes", "Log text stored (characters).", value=sq.log_bytes()
        )
        yield from fleet_families(self.service.store.db, workers)


def fleet_families(db: Database, workers: list[WorkerRecord]) -> Iterator[Metric]:
    """What the Grafana dashboard (``deploy/grafana``) needs beyond the totals:
    ends by state and reason, the queue per task, attempts by reason (OOMs,
    lost ones), slots per worker, the notifications' outbox."""
    ended = CounterMetricFamily(
        "stockade_jobs_ended", "Jobs that ended, by final state and reason.",
        labels=["state", "reason"],
    )  # fmt: skip
    for (state, reason), count in sorted(fleetq.ended_jobs(db).items()):
        ended.add_metric([state, reason], count)
    yield ended
    depth = GaugeMetricFamily(
        "stockade_task_queue_depth", "Runnable queued jobs per task.", labels=["task"]
    )
    age = GaugeMetricFamily(
        "stockade_task_queue_oldest_age_seconds", "Wait of the oldest runnable job per task.",
        labels=["task"],
    )  # fmt: skip
    for task, (n, oldest) in sorted(fleetq.queue_by_task(db).items()):
        depth.add_metric([task], n)
        age.add_metric([task], oldest)
    yield depth
    yield age
    reasons = CounterMetricFamily(
        "stockade_attempts_ended", "Finished attempts by outcome and reason "
        "(reason oom: out of memory; outcome lost: the worker vanished).",
        labels=["outcome", "reason"],
    )  # fmt: skip
    for (outcome, reason), count in sorted(fleetq.attempt_reasons(db).items()):
        reasons.add_metric([outcome, reason], count)
    yield reasons
    busy = fleetq.busy_by_worker(db)
    slots = GaugeMetricFamily("stockade_worker_slots_total", "Slots per live worker.",
                              labels=["worker"])  # fmt: skip
    used = GaugeMetricFamily("stockade_worker_slots_busy", "Jobs running per worker.",
                             labels=["worker"])  # fmt: skip
    for worker in sorted(workers, key=lambda w: w.id):
        slots.add_metric([worker.id], worker.slots)
    for worker_id, n in sorted(busy.items()):
        used.add_metric([worker_id], n)
    yield slots
    yield used
    notes = GaugeMetricFamily(
        "stockade_notifications", "Job-end notifications by state.", labels=["state"]
    )
    states = fleetq.notification_states(db)
    for state in ("pending", "sending", "delivered", "failed"):
        notes.add_metric([state], states.get(state, 0))
    yield notes


_USAGE_HELP = {
    "cpu_seconds": "CPU seconds (user + system) of finished attempts, per task.",
    "memory_bytes": "Peak memory of finished attempts, per task (the cgroup's peak "
    "where a memory limit made one, else the largest resident set).",
}


def usage_families(
    found: dict[str, dict[str, tuple[list[int], int, float]]],
) -> Iterator[Metric]:
    """``stockade_attempt_cpu_seconds`` and ``stockade_attempt_memory_bytes``
    histograms, one series per task."""
    for name, bounds in USAGE_BUCKETS.items():
        family = HistogramMetricFamily(
            f"stockade_attempt_{name}", _USAGE_HELP[name], labels=["task"]
        )
        for task, series in sorted(found.items()):
            if name not in series:
                continue
            counts, total, sum_value = series[name]
            buckets = [(repr(b), c) for b, c in zip(bounds, counts, strict=True)]
            family.add_metric([task], [*buckets, ("+Inf", total)], sum_value=sum_value)
        yield family


def render(service: Service) -> bytes:
    """The exposition text (blocking: it queries the store)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(service))
    return generate_latest(registry)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Jobs, attempts, durations, queue, webhooks, workers and log bytes."""
    body = await run_in_threadpool(render, request.app.state.service)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
