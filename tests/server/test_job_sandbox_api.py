"""Over real HTTP on both stores: a queued job no live worker can claim (its
sandbox, its queue, a label it requires) says why, ``/health`` is degraded
with the reason, ``/api/v1/workers`` lists what each live worker serves, and
input the task cannot take is refused at submit (422), not when it runs."""

from __future__ import annotations

from pathlib import Path

from stockade.store import open_store
from tests.server.helpers import Server

CONFIG = """\
version: 1
tasks:
  isolated:
    run: id -u
    sandbox: bwrap
  echo:
    run: echo "$INPUT_WORD"
  render:
    run: echo rendered
    queue: gpu
    requires:
      labels: {gpu: 1}
server:
  tokens: []
"""


def test_a_job_no_live_worker_can_run_says_why(tmp_path: Path, store_url: str) -> None:
    config = tmp_path / "stockade.yaml"
    config.write_text(CONFIG)
    server = Server(tmp_path / "data", slots=0, config=config, database_url=store_url)
    try:
        client = server.client
        made = client.post("/api/v1/jobs", json={"task": "isolated"})
        assert made.status_code == 201, made.text
        job = client.get(f"/api/v1/jobs/{made.json()['id']}").json()
        assert job["state"] == "queued"
        assert job["sandbox"] == "bwrap"
        assert job["waiting"] == "no live worker offers sandbox 'bwrap'"
        listed = client.get("/api/v1/jobs").json()["jobs"]
        assert [j["waiting"] for j in listed] == [job["waiting"]]
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        routing = health["checks"]["routing"]
        assert not routing["ok"]
        assert "no live worker offers sandbox 'bwrap'" in routing["waiting"]["bwrap"]

        # Queues and labels: from the task, and from the request.
        render = client.post("/api/v1/jobs", json={"task": "render"}).json()
        assert (render["queue"], render["labels"]) == ("gpu", {"gpu": "1"})
        moved = client.post(
            "/api/v1/jobs",
            json={"task": "echo", "queue": "batch", "requires": {"labels": {"disk": "ssd"}}},
        )
        assert moved.status_code == 201, moved.text
        assert (moved.json()["queue"], moved.json()["labels"]) == ("batch", {"disk": "ssd"})
        render = client.get(f"/api/v1/jobs/{render['id']}").json()
        assert render["waiting"] == "no live worker serves queue 'gpu'"
        waiting = client.get("/health").json()["checks"]["routing"]["waiting"]
        assert waiting["queue gpu"] == "1 queued job(s): no live worker serves queue 'gpu'"
        assert waiting["queue batch"] == "1 queued job(s): no live worker serves queue 'batch'"

        # A worker of gpu without the label: now the label is what is missing.
        store = open_store(store_url)
        try:
            store.journal.register_worker(
                "w-gpu", 2, sandboxes=["local"], queues=["gpu"], labels={"gpu": "2"}
            )
        finally:
            store.close()
        render = client.get(f"/api/v1/jobs/{render['id']}").json()
        assert render["waiting"] == "no live worker offers label gpu=1"
        (worker,) = client.get("/api/v1/workers").json()["workers"]
        assert (worker["name"], worker["queues"], worker["labels"]) == (
            "w-gpu", ["gpu"], {"gpu": "2"},
        )  # fmt: skip
        assert worker["slots"] == {"busy": 0, "total": 2} and worker["version"]

        # Input the task cannot take, or a bad queue: refused, nothing queued.
        refused = client.post("/api/v1/jobs", json={"task": "echo", "input": 5})
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "input"
        assert "needs a JSON object of fields" in refused.json()["error"]
        bad_queue = client.post("/api/v1/jobs", json={"task": "echo", "queue": "a b"})
        assert bad_queue.status_code == 422
        assert len(client.get("/api/v1/jobs").json()["jobs"]) == 3
    finally:
        server.stop()
