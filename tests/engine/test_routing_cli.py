"""``examples/routing`` as users run it: real subprocesses on a real store.

Jobs wait in their queue until a worker that serves it (and offers the
labels they require) comes; meanwhile ``jobs`` and ``show`` say why, and
``workers`` lists who is live and what each serves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from stockade.engine.jobspec import adhoc_task, new_job
from stockade.store import open_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "routing" / "stockade.yaml"
STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


def _run(*args: str, url: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STOCKADE_DATABASE_URL=url)
    return subprocess.run(
        [*STOCKADE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def test_the_routing_example_runs_each_job_on_a_worker_that_serves_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    config = ["--config", str(EXAMPLE)]
    report = _run("submit", "report", *config, "--input", '{"day": "mon"}', url=sqlite_url)
    render = _run("submit", "render", *config, url=sqlite_url)
    adhoc = _run(
        "submit", "--queue", "gpu", "--require", "gpu=1", "--cwd", str(tmp_path), "--", "pwd",
        url=sqlite_url,
    )  # fmt: skip
    assert report.returncode == render.returncode == adhoc.returncode == 0, adhoc.stderr
    ids = [p.stdout.strip() for p in (report, render, adhoc)]

    listed = _run("jobs", url=sqlite_url).stdout
    row = next(line for line in listed.splitlines() if line.startswith(ids[1]))
    assert "queued (waiting)" in row and "no live worker serves queue 'gpu'" in row
    assert "exec: pwd" in listed  # what an ad-hoc job runs, not only `exec`

    # A burst worker of gpu runs the two gpu jobs and stops, though report waits.
    gpu = _run(
        "worker", "--burst", "--no-store-process", "--queue", "gpu", "--label", "gpu=1",
        url=sqlite_url,
    )  # fmt: skip
    assert gpu.returncode == 0, gpu.stderr
    stopped = [line for line in gpu.stderr.splitlines() if " stopped: " in line]
    assert stopped and stopped[-1].endswith("stopped: 2 claimed: 2 succeeded"), gpu.stderr

    shown = _run("show", ids[2], url=sqlite_url).stdout
    assert "runs      pwd" in shown and f"in        {tmp_path}" in shown
    assert "queue     gpu" in shown and "requires  gpu=1" in shown
    store = open_store(sqlite_url)
    try:
        states = [store.queries.job(job).state.value for job in ids]
        outputs = store.queries.outputs(ids[2]) or {}
    finally:
        store.close()
    assert states == ["queued", "succeeded", "succeeded"]
    assert outputs["stdout"].strip() == str(tmp_path)  # it ran where it was submitted


def test_input_a_task_cannot_take_is_refused_at_submit_in_one_line(sqlite_url: str) -> None:
    refused = _run("submit", "--input", "5", "--", "true", url=sqlite_url)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1
    assert "input format env needs a JSON object of fields, got int" in refused.stderr
    store = open_store(sqlite_url)
    try:
        assert store.queries.jobs() == []  # nothing was queued
    finally:
        store.close()


def test_workers_lists_each_live_worker_with_what_it_serves(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    try:
        store.journal.register_worker(
            "w-gpu", 2, sandboxes=["local"], queues=["gpu", "render"],
            labels={"gpu": "1", "zone": "a"},
        )  # fmt: skip
        (job,) = store.jobs.submit([new_job("t", adhoc_task(shell="true"), config=None)])
        store.jobs.claim("w-gpu", 1, 30.0)
    finally:
        store.close()
    (found,) = map(json.loads, _run("workers", "--json", url=sqlite_url).stdout.splitlines())
    assert found["name"] == "w-gpu"
    assert found["queues"] == ["gpu", "render"]
    assert found["labels"] == {"gpu": "1", "zone": "a"}
    assert found["sandboxes"] == ["local"]
    assert found["slots"] == {"busy": 1, "total": 2}
    assert found["running"] == [job]
    assert found["version"] and 0 <= found["heartbeat_age"] < 60
    table = _run("workers", url=sqlite_url).stdout
    assert "w-gpu" in table and "gpu,render" in table and "gpu=1,zone=a" in table
