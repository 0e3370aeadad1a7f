"""``stockade run --fleet``: a pipeline's jobs run by two worker processes.

Each test runs the real CLI (``stockade run``) and two ``stockade worker``
processes against one store, SQLite or PostgreSQL, and compares what the
run gives with what the same pipeline gives run in process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.store import open_store
from tests.engine.procs import start_worker, stop
from tests.store.fixtures import pg_base, pg_url, sqlite_url, store_url

__all__ = ["pg_base", "pg_url", "sqlite_url", "store_url"]  # fixtures used here

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipelines"
STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


def stockade(url: str, *args: str, cwd: Path = EXAMPLE) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STOCKADE_DATABASE_URL=url)
    return subprocess.run(
        [*STOCKADE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


@pytest.fixture
def workers(store_url: str, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two workers, separate processes, on the test's store."""
    open_store(store_url).close()  # the schema, before two processes race to make it
    procs = [
        start_worker(store_url, "--slots", "2", "--poll", "0.1", log=tmp_path / f"w{i}.log")
        for i in range(2)
    ]
    yield procs
    for proc in procs:
        stop(proc)


def _finished(stdout: str) -> dict[str, tuple[str, str | None]]:
    events = [json.loads(line) for line in stdout.splitlines()]
    return {e["job"]: (e["status"], e["reason"]) for e in events if e["event"] == "job_finish"}


def _outputs(url: str) -> dict[str, dict[str, object]]:
    """Each job's outputs in the latest run, by job name."""
    store = open_store(url)
    try:
        run = store.runs.latest()
        jobs = store.runs.jobs(run.id)
        outputs = store.runs.outputs(j.id for j in jobs)
        return {
            j.step if j.item is None else f"{j.step}[{j.item}]": outputs.get(j.id, {}) for j in jobs
        }
    finally:
        store.close()


@pytest.mark.parametrize("pipeline", ["ci", "ports"])
def test_fleet_run_gives_what_the_run_in_process_gives(
    store_url: str, workers: list[subprocess.Popen[bytes]], pipeline: str
) -> None:
    """needs, for_each, needs_each, a graph from a step's output, a failure
    and what it skips: the same statuses, reasons and outputs either way."""
    here = stockade(store_url, "run", pipeline, "--json", "--keep-going")
    here_outputs = _outputs(store_url)
    fleet = stockade(store_url, "run", pipeline, "--json", "--keep-going", "--fleet")
    assert fleet.returncode == here.returncode, fleet.stderr
    assert _finished(fleet.stdout) == _finished(here.stdout)
    assert _outputs(store_url) == here_outputs
    store = open_store(store_url)
    try:
        ran = [j for j in store.queries.jobs(limit=None) if j.run_id is None]
        assert ran and all(j.unique_key and j.unique_key.startswith("run:") for j in ran)
        assert {j.worker_id for j in ran if j.worker_id} <= {w.id for w in store.queries.workers()}
    finally:
        store.close()
