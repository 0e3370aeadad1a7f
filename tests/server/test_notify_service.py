"""examples/notify served over real HTTP, with a real worker and a real receiver (the
example's own), on SQLite and PostgreSQL: the notifications, the job list's chart
endpoint, and the Grafana dashboard's queries checked against a real scrape.

The server runs in this process (uvicorn in a thread) with a worker on the same
store: `stockade serve` in a subprocess took 15 s to start on a loaded machine.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stockade.config import load
from stockade.engine.worker import Worker
from stockade.server.app import create_app
from stockade.server.auth import TokenSet, hash_token
from stockade.server.service import Service
from stockade.store import open_store
from tests.engine.helpers import with_worker
from tests.server.helpers import ROOT, serve_in_thread

EXAMPLE = ROOT / "examples" / "notify"
DASHBOARD = ROOT / "deploy" / "grafana" / "stockade.json"
SECRET = "notify-secret-for-tests-2718"
TOKEN = "stk_notify-test-token-0123456789"


@pytest.fixture
def receiver() -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "receiver.py"), "0"], stdout=subprocess.PIPE, text=True,
        env={"NOTIFY_SECRET": SECRET},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        yield proc, int(proc.stdout.readline().split()[-1])
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()


def _exported(text: str) -> set[str]:
    """Every series name a scrape can hold, from its ``# TYPE`` lines."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "gauge": ("",)}  # fmt: skip
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        base = name.removesuffix("_total") if kind == "counter" else name
        names.update(base + suffix for suffix in suffixes.get(kind, ("",)))
    return names


def test_the_notify_example_served_with_its_chart_and_dashboard_metrics(
    store_url: str,
    tmp_path: Path,
    receiver: tuple[subprocess.Popen[str], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc, port = receiver
    log = tmp_path / "notified.jsonl"
    env = {"NOTIFY_URL": f"http://127.0.0.1:{port}/stockade", "NOTIFY_LOG": str(log)}
    config = load(EXAMPLE / "stockade.yaml", env=env)
    monkeypatch.setenv("NOTIFY_SECRET", SECRET)  # read by the worker that sends
    service = Service(open_store(store_url), config, TokenSet([hash_token(TOKEN)]))
    seen: dict[str, Any] = {}

    async def body(worker: Worker) -> None:
        with serve_in_thread(create_app(service)) as url:
            async with httpx.AsyncClient(
                base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
            ) as client:
                job_id = (await client.post("/api/v1/jobs", json={"task": "report"})).json()["id"]

                async def delivered() -> bool:
                    job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
                    seen["job"] = job
                    return [n["state"] for n in job["notifications"]] == ["delivered"] * 2

                await until_async(delivered, 30)
                seen["ends"] = (await client.get("/api/v1/stats/ends?minutes=5")).json()
                seen["bad"] = await client.get("/api/v1/stats/ends?minutes=0")
                seen["scrape"] = (await client.get("/metrics")).text

    try:
        with_worker(store_url, body, slots=1, send_notifications=0.05)
    finally:
        service.close()

    job = seen["job"]
    job_id = job["id"]
    assert job["state"] == "failed"
    hook, command = job["notifications"]
    assert hook["kind"] == "webhook" and hook["to"] == f"http://127.0.0.1:{port}/stockade"
    assert hook["delivery"] == f"{job_id}.0" and [t["status"] for t in hook["history"]] == [204]
    assert command["kind"] == "command" and command["history"][0]["status"] == 0
    assert SECRET not in json.dumps(job)
    assert proc.stdout is not None  # the receiver verified the signature
    assert proc.stdout.readline().split() == [f"{job_id}.0", job_id, "failed", "failed"]
    (line,) = log.read_text().splitlines()  # the command got the summary on stdin
    assert json.loads(line)["job"] | {"error": None} == {
        "id": job_id, "task": "report", "state": "failed", "outcome": "failed",
        "reason": "failed", "error": None, "exit_code": 1, "signal": None, "attempts": 1,
        "max_attempts": 1, "run_id": None, "step": None,
    }  # fmt: skip

    # The chart's endpoint: the job ended within the last minute or two.
    ends = seen["ends"]
    assert ends["minutes"] == 5 and set(ends["series"]) == {"succeeded", "failed", "cancelled"}
    assert sum(ends["series"]["failed"]) == 1 and sum(ends["series"]["succeeded"]) == 0
    assert all(len(counts) == 5 for counts in ends["series"].values())
    assert seen["bad"].status_code == 422 and seen["bad"].json()["field"] == "query.minutes"

    # Every query of the Grafana dashboard names a metric the scrape exports.
    scrape = seen["scrape"]
    exported = _exported(scrape)
    queries = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    assert len(queries) >= 10
    for expr in queries:
        for name in re.findall(r"\bstockade_[a-z_]+", expr):
            assert name in exported, f"{name} (in {expr}) is not exported"
    assert 'stockade_jobs_ended_total{reason="failed",state="failed"} 1.0' in scrape
    assert 'stockade_notifications{state="delivered"} 2.0' in scrape
    assert 'stockade_attempts_ended_total{outcome="failed",reason="failed"} 1.0' in scrape
    assert re.search(r'stockade_worker_slots_total\{worker="[^"]+"\} 1\.0', scrape)


async def until_async(check: Any, timeout: float) -> None:
    """Poll the coroutine function ``check`` until it is true; fail after ``timeout``."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)
