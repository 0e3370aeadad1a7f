"""A job's environment is an allow-list: stockade's credentials never reach it.

A real worker (and a real ``stockade serve``) runs with an API token, a
database URL and an unrelated variable in its environment; the job prints
its whole environment base64-encoded (which the masking of secret values
cannot see through), and the test decodes it.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.server.helpers import HOOK_SECRET, Server

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
TOKEN = "stk_worker-token-never-in-a-job-5150"
UNRELATED = "unrelated-value-8086"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STOCKADE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _decoded(log: str) -> dict[str, str]:
    text = base64.b64decode("".join(log.split())).decode()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _assert_allow_list(env: dict[str, str], *values: str) -> None:
    assert env["STOCKADE_JOB_ID"] and env["PATH"]  # the job contract and the base are there
    for name in ("STOCKADE_TOKEN", "STOCKADE_DATABASE_URL", "SOME_VAR", "HOOK_SECRET"):
        assert name not in env, name
    for value in values:
        assert all(value not in v for v in env.values()), value


def test_worker_job_gets_no_credentials(store_url: str, tmp_path: Path) -> None:
    env = dict(
        os.environ, STOCKADE_DATABASE_URL=store_url, STOCKADE_TOKEN=TOKEN, SOME_VAR=UNRELATED
    )
    submitted = _cli("submit", "--max-attempts", "1", "--shell", "env | base64 -w0", env=env)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    worker = _cli("worker", "--slots", "1", "--burst", "-q", "--data-dir", str(tmp_path), env=env)
    assert worker.returncode == 0, worker.stderr
    log = _cli("logs", job_id, env=env)
    assert log.returncode == 0, log.stderr
    _assert_allow_list(_decoded(log.stdout), TOKEN, store_url, UNRELATED)


def test_served_job_gets_no_credentials(store_url: str, tmp_path: Path) -> None:
    config = tmp_path / "stockade.yaml"
    config.write_text(
        "version: 1\ntasks:\n  dump:\n    run: env | base64 -w0\n    max_attempts: 1\n"
    )
    url = None if store_url.startswith("sqlite") else store_url
    server = Server(tmp_path / "data", config=config, database_url=url, env={"SOME_VAR": UNRELATED})
    try:
        resp = server.client.post("/api/v1/jobs", json={"task": "dump"})
        assert resp.status_code == 201, resp.text
        job_id = resp.json()["id"]
        deadline = time.monotonic() + 30
        while server.client.get(f"/api/v1/jobs/{job_id}").json()["state"] != "succeeded":
            assert time.monotonic() < deadline, "the job did not finish"
            time.sleep(0.05)
        log = server.client.get(f"/api/v1/jobs/{job_id}/logs").text
    finally:
        server.stop()
    token = server.client.headers["Authorization"].removeprefix("Bearer ")
    _assert_allow_list(_decoded(log), token, HOOK_SECRET, UNRELATED)
