"""examples/schedules on a real `stockade serve`: its schedules fire (a missed
tick after downtime, by catch_up), list over HTTP and the CLI; the batch
endpoint queues all of a batch or none of it (both stores)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from stockade.config import load
from stockade.store import open_store
from stockade.store.schedules import ScheduleDef
from tests.server.helpers import ROOT, Server

EXAMPLE = ROOT / "examples" / "schedules" / "stockade.yaml"


def _downtime(url: str) -> None:
    """Store the example's schedules as a server stopped an hour ago left them:
    its ticks since then were missed."""
    from stockade.engine.housekeeping import schedule_defs

    store = open_store(url)
    try:
        defs: list[ScheduleDef] = schedule_defs(load(EXAMPLE))
        store.schedules.define(defs, now=store.queries.now() - 3600)
    finally:
        store.close()


def test_the_example_fires_a_missed_tick_lists_schedules_and_takes_batches(
    store_url: str, tmp_path: Path
) -> None:
    _downtime(store_url)
    server = Server(tmp_path / "data", config=EXAMPLE, database_url=store_url)
    try:
        client = server.client
        deadline = time.monotonic() + 30
        listed: dict[str, dict[str, object]] = {}
        while time.monotonic() < deadline:
            listed = {s["name"]: s for s in client.get("/api/v1/schedules").json()["schedules"]}
            if listed["every-minute"]["last_job"]:
                break
            time.sleep(0.2)
        minute = listed["every-minute"]
        assert minute["last_job"] and minute["skipped"] >= 59  # catch_up latest: one job
        assert listed["nightly"]["timezone"] == "Europe/Paris"
        job_id = minute["last_job"]
        while time.monotonic() < deadline:
            job = client.get(f"/api/v1/jobs/{job_id}").json()
            if job["state"] == "succeeded":
                break
            time.sleep(0.2)
        assert job["input"] == {"name": "cron"} and job["state"] == "succeeded"
        assert client.get(f"/api/v1/jobs/{job_id}/logs").text == "hello cron\n"

        before = len(client.get("/api/v1/jobs", params={"limit": 500}).json()["jobs"])
        bad = [{"task": "greet", "input": {"name": "a"}}, {"task": "gret"}]
        answer = client.post("/api/v1/jobs:batch", json=bad)
        assert answer.status_code == 422
        assert answer.json()["field"] == "body.1.task" and "gret" in answer.json()["error"]
        too_many = client.post("/api/v1/jobs:batch", json=[{"task": "greet"}] * 1001)
        assert too_many.status_code == 422
        assert len(client.get("/api/v1/jobs", params={"limit": 500}).json()["jobs"]) == before
        good = [{"task": "greet", "input": {"name": str(i)}} for i in range(3)]
        created = client.post("/api/v1/jobs:batch", json=good)
        assert created.status_code == 201
        ids = created.json()["ids"]
        assert [client.get(f"/api/v1/jobs/{i}").json()["input"] for i in ids] == [
            {"name": "0"}, {"name": "1"}, {"name": "2"},
        ]  # fmt: skip
    finally:
        assert server.stop() == 0
    out = subprocess.run(
        [sys.executable, "-m", "stockade.cli.main", "schedules", "--database-url", store_url],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    ).stdout  # fmt: skip
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "TASK", "CRON"]
    assert lines[1].startswith("every-minute  greet  * * * * *") and job_id in lines[1]
    assert lines[2].startswith("nightly       greet  0 3 * * *  Europe/Paris  none")
