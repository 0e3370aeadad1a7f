"""examples/notify against a real `stockade serve`, a real receiver (the example's own)
and real HTTP, on SQLite and PostgreSQL: the notifications, the job list's chart
endpoint, and the Grafana dashboard's queries checked against a real scrape."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.helpers import ROOT, Server
from tests.store import pg

EXAMPLE = ROOT / "examples" / "notify"
DASHBOARD = ROOT / "deploy" / "grafana" / "stockade.json"
SECRET = "notify-secret-for-tests-2718"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, subprocess.Popen[str], Path]]:
    base = tmp_path_factory.mktemp(f"notify-{request.param}")
    with contextlib.ExitStack() as stack:
        receiver = subprocess.Popen(
            [sys.executable, str(EXAMPLE / "receiver.py"), "0"], stdout=subprocess.PIPE,
            text=True, env={"NOTIFY_SECRET": SECRET},
        )  # fmt: skip
        assert receiver.stdout is not None
        stack.callback(receiver.stdout.close)
        stack.callback(receiver.wait, 10)
        stack.callback(receiver.kill)
        port = int(receiver.stdout.readline().split()[-1])
        url = None
        if request.param == "postgresql":
            url = stack.enter_context(pg.schema_url(request.getfixturevalue("pg_base")))
        log = base / "notified.jsonl"
        env = {"NOTIFY_SECRET": SECRET, "NOTIFY_URL": f"http://127.0.0.1:{port}/stockade",
               "NOTIFY_LOG": str(log)}  # fmt: skip
        server = Server(base / "data", config=EXAMPLE / "stockade.yaml", env=env, database_url=url)
        yield server, receiver, log
        assert server.stop() == 0


def _until_delivered(server: Server, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job: dict[str, Any] = server.client.get(f"/api/v1/jobs/{job_id}").json()
        states = [n["state"] for n in job["notifications"]]
        if len(states) == 2 and set(states) == {"delivered"}:
            return job
        time.sleep(0.1)
    raise AssertionError(f"not delivered: {job['notifications']}")


def test_a_failed_job_notifies_the_receiver_and_the_command(
    setup: tuple[Server, subprocess.Popen[str], Path],
) -> None:
    server, receiver, log = setup
    job_id = server.client.post("/api/v1/jobs", json={"task": "report"}).json()["id"]
    job = _until_delivered(server, job_id)
    assert job["state"] == "failed"
    hook, command = job["notifications"]
    assert hook["kind"] == "webhook" and hook["to"] == hook["to"].split("?")[0]
    assert hook["delivery"] == f"{job_id}.0" and [t["status"] for t in hook["history"]] == [204]
    assert command["kind"] == "command" and command["history"][0]["status"] == 0
    assert SECRET not in json.dumps(job)
    assert receiver.stdout is not None
    assert receiver.stdout.readline().split() == [f"{job_id}.0", job_id, "failed", "failed"]
    (line,) = log.read_text().splitlines()
    assert json.loads(line)["job"] | {"error": None} == {
        "id": job_id, "task": "report", "state": "failed", "outcome": "failed",
        "reason": "failed", "error": None, "exit_code": 1, "signal": None, "attempts": 1,
        "max_attempts": 1, "run_id": None, "step": None,
    }  # fmt: skip


def test_the_chart_endpoint_counts_the_last_hours_ends(
    setup: tuple[Server, subprocess.Popen[str], Path],
) -> None:
    server, _, _ = setup
    ends = server.client.get("/api/v1/stats/ends", params={"minutes": 5}).json()
    assert ends["minutes"] == 5 and set(ends["series"]) == {"succeeded", "failed", "cancelled"}
    assert sum(ends["series"]["failed"]) >= 1  # the test above's job, this minute or the last
    assert all(len(counts) == 5 for counts in ends["series"].values())
    bad = server.client.get("/api/v1/stats/ends", params={"minutes": 0})
    assert bad.status_code == 422 and bad.json()["field"] == "query.minutes"


def _exported(text: str) -> set[str]:
    """Every series name a scrape can hold, from its ``# TYPE`` lines."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "gauge": ("",)}  # fmt: skip
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        base = name.removesuffix("_total") if kind == "counter" else name
        names.update(base + suffix for suffix in suffixes.get(kind, ("",)))
    return names


def test_every_grafana_query_names_an_exported_metric(
    setup: tuple[Server, subprocess.Popen[str], Path],
) -> None:
    server, _, _ = setup
    scrape = server.client.get("/metrics").text
    exported = _exported(scrape)
    queries = [
        target["expr"]
        for panel in json.loads(DASHBOARD.read_text())["panels"]
        for target in panel["targets"]
    ]
    assert len(queries) >= 10
    for expr in queries:
        for name in re.findall(r"\bstockade_[a-z_]+", expr):
            assert name in exported, f"{name} (in {expr}) is not exported"
    assert 'stockade_jobs_ended_total{reason="failed",state="failed"}' in scrape
    assert 'stockade_notifications{state="delivered"} 2.0' in scrape
    assert re.search(r'stockade_worker_slots_total\{worker="[^"]+"\} 1\.0', scrape)
