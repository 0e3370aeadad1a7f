"""Over real HTTP on both stores: a queued job whose sandbox no live worker
offers says so, and ``/health`` is degraded with the reason."""

from __future__ import annotations

from pathlib import Path

from tests.server.helpers import Server

CONFIG = """\
version: 1
tasks:
  isolated:
    run: id -u
    sandbox: bwrap
server:
  tokens: []
"""


def test_a_job_no_live_worker_can_run_says_why(tmp_path: Path, store_url: str) -> None:
    config = tmp_path / "stockade.yaml"
    config.write_text(CONFIG)
    url = None if store_url.startswith("sqlite") else store_url
    server = Server(tmp_path / "data", slots=0, config=config, database_url=url)
    try:
        made = server.client.post("/api/v1/jobs", json={"task": "isolated"})
        assert made.status_code == 201, made.text
        job = server.client.get(f"/api/v1/jobs/{made.json()['id']}").json()
        assert job["state"] == "queued"
        assert job["sandbox"] == "bwrap"
        assert job["waiting"] == "no live worker offers sandbox 'bwrap'"
        listed = server.client.get("/api/v1/jobs").json()["jobs"]
        assert [j["waiting"] for j in listed] == [job["waiting"]]
        health = server.client.get("/health").json()
        assert health["status"] == "degraded"
        routing = health["checks"]["routing"]
        assert not routing["ok"]
        assert "no live worker offers sandbox 'bwrap'" in routing["waiting"]["bwrap"]
    finally:
        server.stop()
