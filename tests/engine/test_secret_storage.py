"""The store never holds a secret's value, and secret input is masked on every read path.

A ``${DEPLOY_TOKEN}`` in a task stays a reference in the job's stored spec and
is resolved when the attempt starts (from the worker's environment); secret
input fields (named like a secret, or listed in ``secret_inputs``) are kept
for the worker but shown as ``***`` by ``show``, ``jobs``, the HTTP API and
its log stream, and masked in the job's output. Real CLI, worker and server
on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from tests.server.helpers import Server

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
TOKEN = "dtok-4c1a-never-stored-9e2b"
PASSWORD = "hunter2-input-secret-77"
PIN = "4711"

CONFIG = """\
version: 1
tasks:
  deploy:
    run: 'printf %s "token=${DEPLOY_TOKEN}" | sha256sum; printenv AUTH | sha256sum'
    env:
      AUTH: "Bearer ${DEPLOY_TOKEN}"
    max_attempts: 1
  login:
    run: 'echo "user=$INPUT_USER password=$INPUT_PASSWORD pin=$INPUT_PIN"'
    secret_inputs: [pin]
    max_attempts: 1
"""
LOGIN_INPUT = {"user": "ann", "password": PASSWORD, "pin": PIN}


def _cli(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STOCKADE_DATABASE_URL=url, DEPLOY_TOKEN=TOKEN)
    return subprocess.run(
        [*STOCKADE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def _stored_text(url: str) -> str:
    """Everything the jobs table holds, as text (read with SQL, not through stockade)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT spec, input FROM jobs")).all()
    finally:
        engine.dispose()
    return json.dumps([[str(v) for v in row] for row in rows])


def test_a_secret_referenced_in_a_task_is_never_stored(store_url: str, tmp_path: Path) -> None:
    (tmp_path / "stockade.yaml").write_text(CONFIG)
    job_id = _ok(_cli("submit", "deploy", url=store_url, cwd=tmp_path)).strip()
    _ok(_cli("worker", "--slots", "1", "--burst", "-q", url=store_url, cwd=tmp_path))
    shown = _ok(_cli("show", "--json", job_id, url=store_url, cwd=tmp_path))
    assert TOKEN not in shown and "${DEPLOY_TOKEN}" in shown
    assert json.loads(shown)["state"] == "succeeded"
    if store_url.startswith("sqlite"):  # one engine is enough for the raw read
        assert TOKEN not in _stored_text(store_url)
    # The job got the value, resolved when the attempt started (a digest: every
    # plain or encoded form of it is masked in the log).
    token_line, auth_line = _ok(_cli("logs", job_id, url=store_url, cwd=tmp_path)).splitlines()
    assert token_line.split()[0] == hashlib.sha256(f"token={TOKEN}".encode()).hexdigest()
    assert auth_line.split()[0] == hashlib.sha256(f"Bearer {TOKEN}\n".encode()).hexdigest()


def test_secret_input_is_masked_in_show_jobs_and_logs(store_url: str, tmp_path: Path) -> None:
    (tmp_path / "stockade.yaml").write_text(CONFIG)
    given = json.dumps(LOGIN_INPUT)
    job_id = _ok(_cli("submit", "login", "--input", given, url=store_url, cwd=tmp_path)).strip()
    _ok(_cli("worker", "--slots", "1", "--burst", "-q", url=store_url, cwd=tmp_path))
    masked = {"user": "ann", "password": "***", "pin": "***"}
    shown = _ok(_cli("show", "--json", job_id, url=store_url, cwd=tmp_path))
    assert json.loads(shown)["input"] == masked
    listed = _ok(_cli("jobs", "--json", url=store_url, cwd=tmp_path))
    assert [json.loads(line)["input"] for line in listed.splitlines()] == [masked]
    log = _ok(_cli("logs", job_id, url=store_url, cwd=tmp_path))
    assert log == "user=ann password=*** pin=***\n"
    for text in (shown, listed, log):
        assert PASSWORD not in text and PIN not in text


def test_secret_input_is_masked_over_http(store_url: str, tmp_path: Path) -> None:
    config = tmp_path / "stockade.yaml"
    config.write_text(CONFIG + "server:\n  max_body: 64KiB\n")
    url = None if store_url.startswith("sqlite") else store_url
    env = {"DEPLOY_TOKEN": TOKEN}
    server = Server(tmp_path / "data", config=config, database_url=url, env=env)
    masked = {"user": "ann", "password": "***", "pin": "***"}
    try:
        client = server.client
        made = client.post("/api/v1/jobs", json={"task": "login", "input": LOGIN_INPUT})
        assert made.status_code == 201, made.text
        job_id = made.json()["id"]
        seen = [made.text]
        with client.stream("GET", f"/api/v1/jobs/{job_id}/logs/stream") as stream:
            seen.append("".join(stream.iter_text()))
        deadline = time.monotonic() + 30
        while (job := client.get(f"/api/v1/jobs/{job_id}")).json()["state"] != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        seen += [job.text, client.get("/api/v1/jobs").text]
        seen.append(client.get(f"/api/v1/jobs/{job_id}/logs").text)
        assert made.json()["input"] == job.json()["input"] == masked
        assert client.get("/api/v1/jobs").json()["jobs"][0]["input"] == masked
        assert "password=*** pin=***" in seen[-1]
    finally:
        server.stop()
    for text in seen:
        assert PASSWORD not in text and PIN not in text


PIPELINE = """\
version: 1
tasks:
  notify:
    run: 'printenv HOOK_URL | sha256sum'
pipelines:
  ship:
    steps:
      push:
        run: 'printf %s "${DEPLOY_TOKEN}" | sha256sum'
      tell:
        task: notify
        needs: [push]
        env: {HOOK_URL: "https://hooks.example/${DEPLOY_TOKEN}"}
"""


def test_a_pipeline_run_stores_references_not_values(store_url: str, tmp_path: Path) -> None:
    (tmp_path / "stockade.yaml").write_text(PIPELINE)
    _ok(
        _cli(
            "run",
            "ship",
            "--plain",
            "--data-dir",
            str(tmp_path / "data"),
            url=store_url,
            cwd=tmp_path,
        )
    )
    listed = _ok(_cli("jobs", "--json", url=store_url, cwd=tmp_path))
    ids = {json.loads(line)["task"]: json.loads(line)["id"] for line in listed.splitlines()}
    assert set(ids) == {"push", "notify"}
    for task, digest_of in (("push", TOKEN), ("notify", f"https://hooks.example/{TOKEN}\n")):
        shown = _ok(_cli("show", "--json", ids[task], url=store_url, cwd=tmp_path))
        assert TOKEN not in shown and "${DEPLOY_TOKEN}" in shown, task
        log = _ok(_cli("logs", ids[task], url=store_url, cwd=tmp_path))
        assert log.split()[0] == hashlib.sha256(digest_of.encode()).hexdigest(), task
