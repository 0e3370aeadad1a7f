"""Hostile input over real HTTP, on SQLite and PostgreSQL: a clear 4xx, nothing stored,
and reads that survive whatever a row already holds."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from stockade.config import load
from stockade.engine.jobspec import new_job
from stockade.store import open_store
from stockade.store.serverq import UNVERIFIED_SAMPLE, ServerQueries
from tests.server.helpers import CONFIG, Server, hook_headers, push_payload
from tests.store import pg

SURROGATE_BODY = b'{"task": "build", "input": {"repo": "a", "ref": "\\ud800"}}'


@dataclass
class Served:
    server: Server
    url: str  # the server's store, for writing rows past the API and reading them back


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    with contextlib.ExitStack() as stack:
        data = tmp_path_factory.mktemp(f"hostile-{request.param}")
        if request.param == "postgresql":
            url = stack.enter_context(pg.schema_url(request.getfixturevalue("pg_base")))
        else:
            url = f"sqlite:///{data / 'store.db'}"
        srv = Server(data, database_url=url)
        yield Served(srv, url)
        assert srv.stop() == 0
        assert "Traceback" not in srv.log.read_text()


def _jobs(served: Served) -> list[dict[str, Any]]:
    resp = served.server.client.get("/api/v1/jobs", params={"limit": 500})
    assert resp.status_code == 200, resp.text
    jobs: list[dict[str, Any]] = resp.json()["jobs"]
    return jobs


def test_input_that_is_not_text_is_refused_and_not_stored(served: Served) -> None:
    before = _jobs(served)
    resp = served.server.client.post(
        "/api/v1/jobs", content=SURROGATE_BODY, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 422
    body = resp.json()
    assert body["field"] == "body.input"
    assert "input.ref holds a lone UTF-16 surrogate" in body["fields"][0]["message"]
    assert _jobs(served) == before


def test_a_stored_row_that_is_not_text_is_read_and_failed_cleanly(served: Served) -> None:
    config = load(CONFIG, env={"HOOK_SECRET": "x"})
    store = open_store(served.url)
    try:  # written past the API, as a row stored before input was checked would be
        (job_id,) = store.jobs.submit(
            [new_job("build", config.tasks["build"], config=config, input={"ref\udc00": "\ud800"})]
        )
    finally:
        store.close()
    client = served.server.client
    listed = [job for job in _jobs(served) if job["id"] == job_id]
    assert listed and listed[0]["input"] == {"ref\ufffd": "\ufffd"}
    for path in ("", "/outputs", "/events", "/logs"):
        assert client.get(f"/api/v1/jobs/{job_id}{path}").status_code == 200
    deadline = time.monotonic() + 30
    while (job := client.get(f"/api/v1/jobs/{job_id}").json())["state"] != "failed":
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["reason"] == "invalid_job"
    assert "holds a lone UTF-16 surrogate" in job["error"]
    assert job["input"] == {"ref\ufffd": "\ufffd"}
    for args in (["jobs"], ["jobs", "--json"], ["show", job_id], ["show", job_id, "--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "stockade.cli.main", *args, "--database-url", served.url],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert job_id in done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs?task=build%00x",
        "/api/v1/jobs?run=r%00",
        "/api/v1/jobs?after=%00",
        "/api/v1/jobs/ab%00cd",
        "/api/v1/jobs/ab%00cd/logs",
        "/api/v1/runs/r%00",
    ],
)
def test_a_nul_in_the_url_is_a_422(served: Served, path: str) -> None:
    resp = served.server.client.get(path)
    assert resp.status_code == 422
    assert resp.json() == {
        "error": "the URL holds a NUL character (%00): no id, name or filter has one",
        "field": "url",
    }


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize("header", ["X-GitHub-Delivery", "X-GitHub-Event"])
def test_an_over_long_webhook_header_is_a_422(served: Served, header: str, signed: bool) -> None:
    body = push_payload(ref="refs/heads/long")
    headers = hook_headers(body, "long-header")
    headers[header] = "h" * 300
    if not signed:
        del headers["X-Hub-Signature-256"]
    resp = httpx.post(served.server.url + "/hooks/push", content=body, headers=headers)
    assert resp.status_code == 422
    assert resp.json() == {
        "error": f"header {header} is longer than 200 characters",
        "field": f"header.{header}",
    }


def test_a_signed_payload_that_is_not_text_is_a_422(served: Served) -> None:
    body = b'{"ref": "\\udfff", "repository": {"full_name": "a/b", "private": false}}'
    resp = httpx.post(
        served.server.url + "/hooks/push", content=body, headers=hook_headers(body, "sur-1")
    )
    assert resp.status_code == 422
    assert resp.json()["error"].startswith("payload.ref holds a lone UTF-16 surrogate")


def _rejected(served: Served) -> float:
    for line in served.server.client.get("/metrics").text.splitlines():
        if line.startswith('stockade_webhook_deliveries_total{hook="push",outcome="rejected"}'):
            return float(line.split()[-1])
    return 0.0


def test_unsigned_posts_write_a_count_and_a_capped_sample(served: Served) -> None:
    before = _rejected(served)
    posts = UNVERIFIED_SAMPLE + 25
    body = push_payload(ref="refs/heads/unsigned")
    with httpx.Client(base_url=served.server.url) as client:
        for n in range(posts):
            headers = hook_headers(body, f"unsigned-{n}")
            del headers["X-Hub-Signature-256"]
            assert client.post("/hooks/push", content=body, headers=headers).status_code == 401
    assert _rejected(served) == before + posts
    store = open_store(served.url)
    try:
        rows = ServerQueries(store).deliveries("push", limit=10 * posts)
    finally:
        store.close()
    unverified = [row for row in rows if not row["verified"]]
    assert len(unverified) == UNVERIFIED_SAMPLE
    assert unverified[0]["delivery_id"] == f"unsigned-{posts - 1}"  # the newest are kept
