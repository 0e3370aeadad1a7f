"""Over real HTTP on both stores: a job submitted to a queue with required
labels says why it waits, ``/health`` names what is missing, the embedded
worker is listed with what it serves, and input the task cannot take is
refused at submit (422), not when the job runs."""

from __future__ import annotations

from pathlib import Path

from tests.server.helpers import Server

CONFIG = """\
version: 1
tasks:
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


def test_routing_over_http(tmp_path: Path, store_url: str) -> None:
    config = tmp_path / "stockade.yaml"
    config.write_text(CONFIG)
    url = None if store_url.startswith("sqlite") else store_url
    server = Server(tmp_path / "data", slots=1, config=config, database_url=url)
    try:
        client = server.client
        render = client.post("/api/v1/jobs", json={"task": "render"}).json()
        assert (render["queue"], render["labels"]) == ("gpu", {"gpu": "1"})
        moved = client.post(
            "/api/v1/jobs",
            json={"task": "echo", "queue": "batch", "requires": {"labels": {"disk": "ssd"}}},
        )
        assert moved.status_code == 201, moved.text
        assert (moved.json()["queue"], moved.json()["labels"]) == ("batch", {"disk": "ssd"})

        job = client.get(f"/api/v1/jobs/{render['id']}").json()
        assert job["state"] == "queued"
        # The embedded worker serves every queue, and offers no label.
        assert job["waiting"] == "no live worker offers label gpu=1"
        routing = client.get("/health").json()["checks"]["routing"]
        assert not routing["ok"]
        assert routing["waiting"] == {
            "label gpu=1": "1 queued job(s): no live worker offers label gpu=1",
            "label disk=ssd": "1 queued job(s): no live worker offers label disk=ssd",
        }

        (worker,) = client.get("/api/v1/workers").json()["workers"]
        assert worker["queues"] is None and worker["labels"] == {}
        assert worker["slots"]["total"] == 1 and worker["version"]

        refused = client.post("/api/v1/jobs", json={"task": "echo", "input": 5})
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "input"
        assert "needs a JSON object of fields" in refused.json()["error"]
        bad_queue = client.post("/api/v1/jobs", json={"task": "echo", "queue": "a b"})
        assert bad_queue.status_code == 422
        assert len(client.get("/api/v1/jobs").json()["jobs"]) == 2  # nothing else queued
    finally:
        server.stop()
