"""End to end, as in the Familiar notes: a signed webhook spawns a job, its log
is followed over SSE, the metrics move, and SIGTERM drains cleanly; on SQLite
and on PostgreSQL (where the stream follows the log through NOTIFY)."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import httpx

from tests.server.helpers import Server, hook_headers, push_payload, sse_events
from tests.store.fixtures import pg_base, pg_url, sqlite_url, store_url

__all__ = ["pg_base", "pg_url", "sqlite_url", "store_url"]


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_webhook_to_logs_to_metrics_to_drain(tmp_path: Path, store_url: str) -> None:
    url = None if store_url.startswith("sqlite") else store_url  # SQLite: in the data dir
    server = Server(tmp_path / "data", drain="20s", database_url=url)
    try:
        before = server.client.get("/metrics").text
        body = push_payload(ref="refs/heads/e2e")
        resp = httpx.post(
            server.url + "/hooks/push", content=body, headers=hook_headers(body, "e2e-1")
        )
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
        job = server.client.get(f"/api/v1/jobs/{job_id}").json()
        assert job["task"] == "build"
        assert job["input"] == {"repo": "acme/widget", "ref": "refs/heads/e2e"}

        with server.client.stream("GET", f"/api/v1/jobs/{job_id}/logs/stream") as stream:
            events = sse_events("".join(stream.iter_text()))
        texts = [e["data"] for e in events if e["event"] == "log"]
        assert "building acme/widget at refs/heads/e2e" in texts[0]
        assert events[-1]["event"] == "end" and "succeeded" in events[-1]["data"]

        after = server.client.get("/metrics").text
        succeeded = 'stockade_jobs{state="succeeded",task="build"}'
        assert _metric(after, succeeded) == _metric(before, succeeded) + 1
        accepted = 'stockade_webhook_deliveries_total{hook="push",outcome="accepted"}'
        assert _metric(after, accepted) == _metric(before, accepted) + 1
        assert _metric(after, "stockade_log_bytes_total") > _metric(
            before, "stockade_log_bytes_total"
        )

        # A job still running when SIGTERM comes is drained, not killed.
        body2 = push_payload(ref="refs/heads/drain")
        running = httpx.post(
            server.url + "/hooks/push", content=body2, headers=hook_headers(body2, "e2e-2")
        ).json()["job_id"]
        deadline = time.monotonic() + 10
        while server.client.get(f"/api/v1/jobs/{running}").json()["state"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        refused = httpx.get(server.url + "/api/v1/jobs", headers=server.client.headers, timeout=5)
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        health = httpx.get(server.url + "/health", timeout=5)
        assert health.status_code == 503 and health.json()["status"] == "down"
        assert server.proc.wait(30) == 0
    finally:
        server.stop()
    log = server.log.read_text()
    assert "draining" in log and "Traceback" not in log
    # The drained job finished on its own: restart on the same store and look.
    again = Server(tmp_path / "data", slots=0, database_url=url)
    try:
        job = again.client.get(f"/api/v1/jobs/{running}").json()
        assert job["state"] == "succeeded", job
    finally:
        assert again.stop() == 0
