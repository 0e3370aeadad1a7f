"""The HTTP API against a real `stockade serve` subprocess (real uvicorn, real HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.helpers import (
    CONFIG_TOKEN,
    ENV_TOKEN,
    HOOK_SECRET,
    Server,
    free_port,
    hook_headers,
    push_payload,
    sign,
    sse_events,
)
from tests.store import pg


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server for the module's tests, once on SQLite and once on PostgreSQL
    (a schema of its own), so every query of the service runs on both."""
    with contextlib.ExitStack() as stack:
        url = None
        if request.param == "postgresql":
            url = stack.enter_context(pg.schema_url(request.getfixturevalue("pg_base")))
        srv = Server(tmp_path_factory.mktemp(f"serve-{request.param}"), database_url=url)
        yield srv
        assert srv.stop() == 0


def _wait_done(server: Server, job_id: str) -> dict[str, object]:
    with server.client.stream("GET", f"/api/v1/jobs/{job_id}/logs/stream") as resp:
        "".join(resp.iter_text())
    job: dict[str, object] = server.client.get(f"/api/v1/jobs/{job_id}").json()
    return job


def test_health_needs_no_token_and_reports_checks(server: Server) -> None:
    resp = httpx.get(server.url + "/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"store", "workers", "queue", "routing", "sandboxes"}
    assert body["checks"]["workers"]["embedded_alive"] is True
    sandboxes = body["checks"]["sandboxes"]
    assert sandboxes["ok"] is True and sandboxes["needed"] == ["local"]
    assert sandboxes["usable"]["local"] is True
    assert set(sandboxes["usable"]) == {"local", "bwrap", "chroot", "oci"}


def test_health_is_degraded_when_a_needed_sandbox_is_unusable(tmp_path: Path) -> None:
    # A task that needs bubblewrap, on a server whose PATH has no bwrap: the
    # registry's own check (shutil.which) finds it missing, as on a host without it.
    config = tmp_path / "stockade.yaml"
    config.write_text("version: 1\ntasks:\n  isolated: {run: 'true', sandbox: bwrap}\n")
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python").symlink_to(sys.executable)
    srv = Server(tmp_path / "data", slots=0, config=config, env={"PATH": str(bare)})
    try:
        resp = httpx.get(srv.url + "/health")
        body = resp.json()
        assert resp.status_code == 200 and body["status"] == "degraded", body
        check = body["checks"]["sandboxes"]
        assert check["ok"] is False and check["needed"] == ["bwrap"]
        assert check["usable"]["bwrap"] is False and "bubblewrap" in check["problems"]["bwrap"]
        assert all(c["ok"] for name, c in body["checks"].items() if name != "sandboxes")
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/metrics", "/openapi.json", "/api/v1/jobs/x"])
@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic abc", f"Bearer {ENV_TOKEN}x"])
def test_missing_or_wrong_token_is_a_bare_401(server: Server, path: str, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    resp = httpx.get(server.url + path, headers=headers)
    assert resp.status_code == 401
    assert resp.json() == {"error": "unauthorized"}


def test_config_token_hash_and_env_token_both_work(server: Server) -> None:
    for token in (CONFIG_TOKEN, ENV_TOKEN):
        resp = httpx.get(server.url + "/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200


def test_submit_is_idempotent_with_a_key(server: Server) -> None:
    body = {"task": "build", "input": {"repo": "r", "ref": "idem"}}
    first = server.client.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "same"})
    again = server.client.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "same"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = {"task": "build", "input": {"repo": "r", "ref": "different"}}
    clash = server.client.post("/api/v1/jobs", json=other, headers={"Idempotency-Key": "same"})
    assert clash.status_code == 409
    plain = server.client.post("/api/v1/jobs", json=body)
    assert plain.status_code == 201 and plain.json()["id"] != first.json()["id"]


def test_racing_requests_with_one_key_make_one_job(server: Server) -> None:
    body = {"task": "build", "input": {"repo": "r", "ref": "race"}}
    headers = {"Authorization": f"Bearer {ENV_TOKEN}", "Idempotency-Key": "racing"}

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            return list(
                await asyncio.gather(*(client.post("/api/v1/jobs", json=body) for _ in range(20)))
            )

    answers = asyncio.run(race())
    assert sorted(r.status_code for r in answers) == [200] * 19 + [201]
    assert len({r.json()["id"] for r in answers}) == 1


def test_validation_errors_name_the_field(server: Server) -> None:
    missing = server.client.post("/api/v1/jobs", json={"input": {}})
    assert missing.status_code == 422 and missing.json()["field"] == "body.task"
    unknown = server.client.post("/api/v1/jobs", json={"task": "nope"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "task"
    bad = server.client.post("/api/v1/jobs", json={"task": "build", "priority": "high"})
    assert bad.status_code == 422 and bad.json()["field"] == "body.priority"
    state = server.client.get("/api/v1/jobs", params={"state": "sleeping"})
    assert state.status_code == 422 and state.json()["field"] == "query.state.0"


def test_a_body_without_json_content_type_is_told_so(server: Server) -> None:
    body = b'{"task": "build"}'
    for headers in ({}, {"Content-Type": "text/plain"}):
        resp = server.client.post("/api/v1/jobs", content=body, headers=headers)
        assert resp.status_code == 422, resp.text
        assert "Content-Type: application/json" in resp.json()["error"], resp.text
    bad_json = server.client.post(
        "/api/v1/jobs", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 422 and bad_json.json()["error"] == "invalid request"


def test_an_ambiguous_id_prefix_lists_candidates(server: Server) -> None:
    ids = [
        server.client.post("/api/v1/jobs", json={"task": "build", "input": {"n": n}}).json()["id"]
        for n in range(2)
    ]
    common = next(ids[0][:n] for n in range(len(ids[0]), 0, -1) if ids[1].startswith(ids[0][:n]))
    # ids start with their submission time, so two made in a row share a prefix
    resp = server.client.get(f"/api/v1/jobs/{common}")
    assert resp.status_code == 404, resp.text
    # the ids it matches, never the prefix the client sent
    assert resp.json()["error"] == "no such job: the id prefix is ambiguous or too short"
    assert set(ids) <= set(resp.json()["candidates"]) or len(resp.json()["candidates"]) == 5


def test_oversized_body_is_413(server: Server) -> None:
    big = {"task": "build", "input": {"blob": "x" * 70_000}}
    assert server.client.post("/api/v1/jobs", json=big).status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(80):
            yield b"x" * 1000

    resp = server.client.post(
        "/api/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 413


def test_list_filters_and_pages(server: Server) -> None:
    ids = [
        server.client.post("/api/v1/jobs", json={"task": "build", "input": {"n": i}}).json()["id"]
        for i in range(3)
    ]
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, object] = {"limit": 2, "task": "build"}
        if after:
            params["after"] = after
        page = server.client.get("/api/v1/jobs", params=params).json()
        seen += [job["id"] for job in page["jobs"]]
        after = page["next"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) and set(ids) <= set(seen)
    none = server.client.get("/api/v1/jobs", params={"task": "other"}).json()
    assert none == {"jobs": [], "next": None}


def test_search_jobs_by_id_prefix_task_and_command(server: Server) -> None:
    """``q`` finds jobs by what one remembers of them (it was not a parameter)."""
    job_id = server.client.post("/api/v1/jobs", json={"task": "build"}).json()["id"]

    def found(q: str, **more: object) -> list[str]:
        resp = server.client.get("/api/v1/jobs", params={"q": q, "limit": 500, **more})
        assert resp.status_code == 200, resp.text
        return [job["id"] for job in resp.json()["jobs"]]

    assert found(job_id[:16]) == [job_id]
    assert job_id in found("BUIL") and job_id in found("built $input_ref")  # task, command
    assert job_id in found("built", task="build") and found("built", task="other") == []
    assert found("no job runs this") == []
    for bad in ("", "x" * 201):
        resp = server.client.get("/api/v1/jobs", params={"q": bad})
        assert resp.status_code == 422 and resp.json()["field"] == "query.q", resp.text


def test_get_logs_cancel_retry(server: Server) -> None:
    job_id = server.client.post(
        "/api/v1/jobs", json={"task": "build", "input": {"repo": "a", "ref": "b"}}
    ).json()["id"]
    job = _wait_done(server, job_id)
    assert job["state"] == "succeeded" and job["attempts_detail"]
    assert server.client.get(f"/api/v1/jobs/{job_id}/logs").text == "building a at b\nbuilt b\n"
    kinds = [e["kind"] for e in server.client.get(f"/api/v1/jobs/{job_id}/events").json()["events"]]
    assert kinds[0] == "queued"
    assert server.client.post(f"/api/v1/jobs/{job_id}/cancel").json()["result"] == (
        "already succeeded"
    )
    delayed = server.client.post(
        "/api/v1/jobs", json={"task": "build", "input": {}, "delay": 3600}
    ).json()["id"]
    assert server.client.post(f"/api/v1/jobs/{delayed}/cancel").json()["result"] == "cancelled"
    assert server.client.post(f"/api/v1/jobs/{delayed}/retry").json()["result"] == "queued"
    server.client.post(f"/api/v1/jobs/{delayed}/cancel")
    assert server.client.get("/api/v1/jobs/ffffffffffff").status_code == 404


def test_attempts_report_what_they_used(server: Server) -> None:
    job_id = server.client.post(
        "/api/v1/jobs", json={"task": "build", "input": {"repo": "u", "ref": "v"}}
    ).json()["id"]
    attempt = _wait_done(server, job_id)["attempts_detail"][0]
    usage = attempt["usage"]
    assert usage["cpu_user"] >= 0 and usage["cpu_system"] >= 0 and usage["wall"] >= 1.0
    assert "result" not in attempt and attempt["dump"] is None
    metrics = server.client.get("/metrics").text
    count = 'stockade_attempt_cpu_seconds_count{task="build"} '
    assert count in metrics and 'stockade_attempt_cpu_seconds_bucket{le="+Inf",task="build"}' in (
        metrics
    )
    assert float(metrics.split(count)[1].split()[0]) >= 1


def test_sse_resumes_after_last_event_id(server: Server) -> None:
    job_id = server.client.post(
        "/api/v1/jobs", json={"task": "build", "input": {"repo": "r", "ref": "sse"}}
    ).json()["id"]
    with server.client.stream("GET", f"/api/v1/jobs/{job_id}/logs/stream") as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = sse_events("".join(resp.iter_text()))
    logs = [e for e in events if e["event"] == "log"]
    assert [e["event"] for e in events][-1] == "end" and len(logs) == 2
    resumed = server.client.get(
        f"/api/v1/jobs/{job_id}/logs/stream", headers={"Last-Event-ID": logs[0]["id"]}
    )
    again = [e for e in sse_events(resumed.text) if e["event"] == "log"]
    assert [e["id"] for e in again] == [logs[1]["id"]]


def test_webhook_security(server: Server) -> None:
    body = push_payload(ref="refs/heads/sec")
    url = server.url + "/hooks/push"
    unsigned = {k: v for k, v in hook_headers(body, "sec-1").items() if "Signature" not in k}
    assert httpx.post(url, content=body, headers=unsigned).status_code == 401
    wrong = {**hook_headers(body, "sec-2"), "X-Hub-Signature-256": sign(body, "not-the-secret")}
    assert httpx.post(url, content=body, headers=wrong).status_code == 401
    tampered = hook_headers(body, "sec-3")
    resp = httpx.post(url, content=body + b" ", headers=tampered)
    assert resp.status_code == 401 and resp.json() == {"error": "unauthorized"}
    ok = httpx.post(url, content=body, headers=hook_headers(body, "sec-4"))
    assert ok.status_code == 202
    replay = httpx.post(url, content=body, headers=hook_headers(body, "sec-4"))
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert replay.json()["job_id"] == ok.json()["job_id"]
    big = b'{"pad": "' + b"x" * 70_000 + b'"}'
    assert httpx.post(url, content=big, headers=hook_headers(big, "sec-5")).status_code == 413
    ignored = httpx.post(url, content=body, headers=hook_headers(body, "sec-6", event="issues"))
    assert ignored.status_code == 200 and ignored.json()["accepted"] is False
    private = push_payload(private=True)
    filtered = httpx.post(url, content=private, headers=hook_headers(private, "sec-7"))
    assert filtered.json()["accepted"] is False
    assert httpx.post(server.url + "/hooks/nope", content=body).status_code == 404
    metrics = server.client.get("/metrics").text
    assert 'stockade_webhook_deliveries_total{hook="push",outcome="rejected"} 3.0' in metrics
    assert 'outcome="duplicate"} 1.0' in metrics


def test_secrets_never_appear_in_responses(server: Server) -> None:
    body = push_payload(ref="refs/heads/secret-check")
    job_id = httpx.post(
        server.url + "/hooks/push", content=body, headers=hook_headers(body, "leak-1")
    ).json()["job_id"]
    _wait_done(server, job_id)
    texts = [
        server.client.get(path).text
        for path in (
            "/api/v1/jobs?limit=500",
            f"/api/v1/jobs/{job_id}",
            f"/api/v1/jobs/{job_id}/logs",
            f"/api/v1/jobs/{job_id}/logs/stream",
            f"/api/v1/jobs/{job_id}/events",
            "/metrics",
            "/openapi.json",
            "/health",
        )
    ]
    texts.append(httpx.get(server.url + "/api/v1/jobs").text)
    for text in texts:
        for secret in (HOOK_SECRET, ENV_TOKEN, CONFIG_TOKEN):
            assert secret not in text


def test_openapi_document_lists_the_api(server: Server) -> None:
    doc = server.client.get("/openapi.json").json()
    for path in ("/api/v1/jobs", "/api/v1/jobs/{job_id}/logs/stream", "/hooks/{name}", "/health"):
        assert path in doc["paths"]


def test_health_command(server: Server, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "stockade.cli.main", "health", "--url"]
    ok = subprocess.run([*cmd, server.url], check=False, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and '"ok"' in ok.stdout
    gone = subprocess.run(
        [*cmd, f"http://127.0.0.1:{free_port()}", "-q"],
        check=False,
        capture_output=True,
        timeout=30,
    )
    assert gone.returncode == 1
