"""The run endpoints against a real `stockade serve` subprocess (real uvicorn, real HTTP):
the run executes inside the server, its jobs are real processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.server.helpers import Server

CONFIG = """
tasks:
  gotest:
    workdir: {root}
    run: cat events.jsonl
  hello:
    workdir: {root}
    run: 'echo "hello from the $WHO"; echo "greeting=hi" >> "$STOCKADE_OUTPUT"'
  wait:
    run: 'echo waiting; sleep 30'
pipelines:
  ci:
    params:
      who: {{default: server}}
    steps:
      greet:
        task: hello
        env: {{WHO: "${{{{ params.who }}}}"}}
      test:
        needs: [greet]
        task: gotest
        events: test2json
  slow:
    steps:
      wait:
        for_each: [a, b]
        task: wait
"""
EVENTS = (
    '{"Action":"run","Package":"m/p","Test":"TestOK"}\n'
    '{"Action":"pass","Package":"m/p","Test":"TestOK","Elapsed":0.1}\n'
    '{"Action":"output","Package":"m/p","Test":"TestNo","Output":"p_test.go:9: no\\n"}\n'
    '{"Action":"fail","Package":"m/p","Test":"TestNo","Elapsed":0.2}\n'
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("runs-api")
    (root / "events.jsonl").write_text(EVENTS)
    config = root / "stockade.yaml"
    config.write_text(CONFIG.format(root=root))
    srv = Server(root / "data", config=config)
    yield srv
    assert srv.stop() == 0


def _until(server: Server, run_id: str, done: Any, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = server.client.get(f"/api/v1/runs/{run_id}").json()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_start_a_run_and_follow_it_to_its_results(server: Server) -> None:
    started = server.client.post("/api/v1/runs", json={"pipeline": "ci"})
    assert started.status_code == 201, started.text
    run = started.json()
    assert started.headers["Location"] == f"/api/v1/runs/{run['id']}"
    assert run["state"] in ("queued", "running") and run["pipeline"] == "ci"
    assert set(run["steps"]) == {"greet", "test"}

    body = _until(server, run["id"], lambda b: b["state"] not in ("queued", "running"))
    assert body["state"] == "succeeded", body
    assert body["steps"]["greet"] == {
        "status": "succeeded", "reason": None, "jobs": 1, "counts": {"succeeded": 1}
    }  # fmt: skip
    assert body["tests"] == {"passed": 1, "failed": 1}
    assert [(t["test"], t["output"]) for t in body["failed_tests"]] == [
        ("TestNo", "p_test.go:9: no\n")
    ]
    greet = next(j for j in body["jobs"] if j["job"] == "greet")
    assert greet["outputs"]["greeting"] == "hi"

    # its jobs are jobs of the jobs API too, logs and all
    listed = server.client.get(f"/api/v1/runs/{run['id']}/jobs").json()["jobs"]
    assert {j["id"] for j in listed} == {j["id"] for j in body["jobs"]}
    shown = server.client.get(f"/api/v1/jobs/{greet['id']}").json()
    assert (shown["state"], shown["run_id"], shown["step"]) == ("succeeded", run["id"], "greet")
    filtered = server.client.get("/api/v1/jobs", params={"run": run["id"]}).json()["jobs"]
    assert {j["id"] for j in filtered} == {j["id"] for j in body["jobs"]}
    assert all(j["run_id"] == run["id"] for j in filtered)
    other = server.client.get("/api/v1/jobs", params={"run": "ffffffffffff"}).json()
    assert other["jobs"] == []
    log = server.client.get(f"/api/v1/jobs/{greet['id']}/logs").text
    assert log == "hello from the server\n"

    page = server.client.get("/api/v1/runs", params={"limit": 1}).json()
    assert page["runs"][0]["id"] == run["id"]

    # its timeline: one lane (greet, then test), both on the critical path
    timeline = server.client.get(f"/api/v1/runs/{run['id']}/timeline").json()
    assert [(b["job"], b["lane"], b["status"]) for b in timeline["bars"]] == [
        ("greet", 0, "succeeded"), ("test", 0, "succeeded")
    ]  # fmt: skip
    test_job = next(j for j in body["jobs"] if j["job"] == "test")
    assert timeline["critical_path"] == [greet["id"], test_job["id"]]
    assert timeline["lanes"] == 1 and "overlapping intervals" in timeline["lanes_from"]
    first, second = timeline["bars"]
    assert 0 <= first["start"] <= first["end"] <= second["start"] + 1e-3 <= second["end"] + 1e-3


def test_params_reach_the_run_and_are_recorded(server: Server) -> None:
    run = server.client.post("/api/v1/runs", json={"pipeline": "ci", "params": {"who": "api"}})
    assert run.status_code == 201, run.text
    body = _until(server, run.json()["id"], lambda b: b["state"] not in ("queued", "running"))
    assert body["options"]["params"] == {"who": "api"}
    greet = next(j for j in body["jobs"] if j["job"] == "greet")
    assert server.client.get(f"/api/v1/jobs/{greet['id']}/logs").text == "hello from the api\n"


def test_cancel_a_running_run(server: Server) -> None:
    run = server.client.post("/api/v1/runs", json={"pipeline": "slow"}).json()
    running = _until(server, run["id"], lambda b: b["steps"]["wait"]["counts"].get("running") == 2)
    assert running["steps"]["wait"]["counts"] == {"running": 2}, running
    asked = time.monotonic()
    cancel = server.client.post(f"/api/v1/runs/{run['id']}/cancel")
    assert cancel.json() == {"id": run["id"], "result": "cancelling"}
    body = _until(server, run["id"], lambda b: b["state"] == "cancelled")
    assert body["state"] == "cancelled" and time.monotonic() - asked < 8
    assert {j["status"] for j in body["jobs"]} == {"cancelled"}
    again = server.client.post(f"/api/v1/runs/{run['id']}/cancel").json()
    assert again["result"] == "already cancelled"


def test_bad_requests_and_auth(server: Server) -> None:
    assert server.client.get("/api/v1/runs/ffffffffffff").status_code == 404
    assert server.client.post("/api/v1/runs/ffffffffffff/cancel").status_code == 404
    assert server.client.get("/api/v1/runs/ffffffffffff/timeline").status_code == 404
    unknown = server.client.post("/api/v1/runs", json={"pipeline": "nope"})
    assert unknown.status_code == 422 and "unknown pipeline 'nope'" in unknown.json()["error"]
    bad_step = server.client.post("/api/v1/runs", json={"pipeline": "ci", "only": ["x"]})
    assert bad_step.status_code == 422 and "unknown step 'x'" in bad_step.json()["error"]
    bad_param = server.client.post("/api/v1/runs", json={"pipeline": "ci", "params": {"x": 1}})
    assert bad_param.status_code == 422
    assert bad_param.json()["error"] == "x: pipeline 'ci' has no param 'x' (params: who)"
    extra = server.client.post("/api/v1/runs", json={"pipeline": "ci", "rm": "-rf"})
    assert extra.status_code == 422
    for method, path in (("GET", "/api/v1/runs"), ("POST", "/api/v1/runs")):
        assert httpx.request(method, server.url + path).status_code == 401
    doc = server.client.get("/openapi.json").json()
    assert {
        "/api/v1/runs", "/api/v1/runs/{run_id}", "/api/v1/runs/{run_id}/cancel",
        "/api/v1/runs/{run_id}/timeline",
    } <= set(doc["paths"])  # fmt: skip
