"""Traces: a job submitted over real HTTP with a caller's `traceparent` continues
that trace on the worker that runs it (submit, claim, launch, run, record), and a
pipeline run has its run and step spans. Spans are collected with the
OpenTelemetry SDK's in-memory exporter, on SQLite and PostgreSQL.

The server runs in this process (uvicorn in a thread, real HTTP on a real
port) because the exporter that collects the spans lives in this process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stockade import tracing
from stockade.engine.worker import Worker
from stockade.server.app import create_app
from stockade.server.auth import TokenSet, hash_token
from stockade.server.service import Service
from stockade.spec import Config
from stockade.store import Store, open_store
from tests.engine.helpers import until, with_worker
from tests.server.helpers import serve_in_thread

TOKEN = "stk_tracing-test-token-0123456789"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    yield exporter
    tracing.use_provider(None)
    provider.shutdown()


def test_a_job_submitted_over_http_continues_the_callers_trace(
    store: Store, store_url: str, spans: InMemorySpanExporter
) -> None:
    config = Config.model_validate(
        {"tasks": {"traced": {"run": 'echo "$TRACEPARENT"', "output_format": "stdout"}}}
    )
    service = Service(open_store(store_url), config, TokenSet([hash_token(TOKEN)]))
    try:
        with serve_in_thread(create_app(service)) as url:
            resp = httpx.post(
                url + "/api/v1/jobs", json={"task": "traced"}, timeout=10,
                headers={"Authorization": f"Bearer {TOKEN}",
                         "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
            )  # fmt: skip
    finally:
        service.close()
    assert resp.status_code == 201, resp.text
    job_id = resp.json()["id"]

    async def body(worker: Worker) -> None:
        await until(lambda: store.queries.job(job_id).state.value == "succeeded", 20)
        await until(lambda: "stockade.record" in {s.name for s in spans.get_finished_spans()})

    with_worker(store_url, body, send_notifications=None)
    found = {s.name: s for s in spans.get_finished_spans()}
    assert {"stockade.submit", "stockade.claim", "stockade.launch", "stockade.run",
            "stockade.record"} <= set(found)  # fmt: skip
    trace_id = int(CALLER_TRACE, 16)
    for span in found.values():
        assert span.context.trace_id == trace_id, span.name
    submit, run = found["stockade.submit"], found["stockade.run"]
    assert submit.parent is not None and submit.parent.span_id == int(CALLER_SPAN, 16)
    assert submit.attributes is not None and submit.attributes["stockade.job"] == job_id
    assert run.parent is not None and run.parent.span_id == submit.context.span_id
    for child in ("stockade.claim", "stockade.launch", "stockade.record"):
        parent = found[child].parent
        assert parent is not None and parent.span_id == run.context.span_id, child
    # The job itself got the run span's context in TRACEPARENT.
    outputs = store.queries.outputs(job_id)
    assert outputs is not None
    assert outputs["stdout"].strip() == f"00-{CALLER_TRACE}-{run.context.span_id:016x}-01"


def test_a_pipeline_run_has_run_and_step_spans(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    from stockade.pipeline.scheduler import Scheduler

    config = Config.model_validate({
        "tasks": {"ok": {"run": "true"}},
        "pipelines": {"p": {"steps": {"a": {"task": "ok"}, "b": {"task": "ok", "needs": ["a"]}}}},
    })  # fmt: skip
    name, pipeline = config.pipeline("p")

    async def main() -> Any:
        scheduler = Scheduler(config, name, pipeline, run_id="r1", data_dir=str(tmp_path))
        return await scheduler.execute()

    assert asyncio.run(main()).status.value == "succeeded"
    finished = spans.get_finished_spans()
    (run,) = [s for s in finished if s.name == "stockade.pipeline"]
    steps = [s for s in finished if s.name == "stockade.step"]
    assert sorted(s.attributes["stockade.step"] for s in steps if s.attributes) == ["a", "b"]
    for step in steps:
        assert step.parent is not None and step.parent.span_id == run.context.span_id
        assert step.attributes is not None and step.attributes["stockade.status"] == "succeeded"
