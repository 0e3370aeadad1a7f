"""`--log-format json`: every line a worker or the server writes parses, and
lines about a job carry its id, attempt, task and the worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.deploy.procs import STOCKADE, run_job, start_serve


def _lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines()]  # each line must parse
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
    return lines


def _stockade(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STOCKADE_DATABASE_URL=url)
    return subprocess.run(
        [*STOCKADE, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_worker_logs_json_lines_with_job_fields(store_url: str) -> None:
    job_id = _stockade(store_url, "submit", "--max-attempts", "1", "--", "true").stdout.strip()
    worker = _stockade(
        store_url, "worker", "--slots", "1", "--burst", "--name", "w-json", "-v",
        "--log-format", "json",
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    lines = _lines(worker.stderr)
    ended = [line for line in lines if line.get("job_id") == job_id]
    assert ended, worker.stderr
    assert {(x["attempt"], x["task"], x["worker"]) for x in ended} == {(1, "exec", "w-json")}
    started = [line for line in lines if "slot(s) on" in line["message"]]
    assert started and started[0]["worker"] == "w-json" and started[0]["level"] == "INFO"


def test_worker_text_logs_stay_the_default(sqlite_url: str) -> None:
    worker = _stockade(sqlite_url, "worker", "--slots", "1", "--burst", "--name", "w-text")
    assert worker.returncode == 0, worker.stderr
    assert worker.stderr.startswith("stockade worker: worker w-text: 1 slot(s) on"), worker.stderr


def test_serve_logs_json_lines_with_job_fields(tmp_path: Path) -> None:
    proc, url, log = start_serve(tmp_path, "--log-format", "json", "-v")
    try:
        job_id = run_job(url)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    lines = _lines(log.read_text())
    assert lines[0]["message"] == f"stockade: serving on {url}"
    ended = [line for line in lines if line.get("job_id") == job_id]
    assert ended and ended[0]["attempt"] == 1 and ended[0]["task"] == "hello", lines
    assert ended[0]["worker"]
    assert lines[-1]["message"] == "stopped" and lines[-1]["level"] == "WARNING"


def test_an_unknown_log_format_is_one_line_that_names_the_choices(sqlite_url: str) -> None:
    worker = _stockade(sqlite_url, "worker", "--burst", "--log-format", "xml")
    assert worker.returncode == 2
    [line] = worker.stderr.splitlines()
    assert "--log-format" in line and "'text', 'json'" in line, line
