"""``stockade run --fleet``: a pipeline's jobs run by two worker processes.

Each test runs the real CLI (``stockade run``) and two ``stockade worker``
processes against one store, SQLite or PostgreSQL, and compares what the
run gives with what the same pipeline gives run in process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stockade.engine.runs import RESUME_SILENCE
from stockade.store import JobRecord, Store
from tests.e2e.fleetworkers import two_workers
from tests.store.fixtures import pg_base, pg_url, sqlite_url, store, store_url

__all__ = ["pg_base", "pg_url", "sqlite_url", "store", "store_url"]  # fixtures used here

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipelines"
STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


def stockade(url: str, *args: str, cwd: Path = EXAMPLE) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STOCKADE_DATABASE_URL=url)
    return subprocess.run(
        [*STOCKADE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


@pytest.fixture
def workers(
    store: Store, store_url: str, tmp_path: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two workers, separate processes, on the test's store (its schema made)."""
    with two_workers(store_url, tmp_path) as procs:
        yield procs


def _finished(stdout: str) -> dict[str, tuple[str, str | None]]:
    events = [json.loads(line) for line in stdout.splitlines()]
    return {e["job"]: (e["status"], e["reason"]) for e in events if e["event"] == "job_finish"}


def _outputs(store: Store) -> dict[str, dict[str, object]]:
    """Each job's outputs in the latest run, by job name."""
    run = store.runs.latest()
    jobs = store.runs.jobs(run.id)
    outputs = store.runs.outputs(j.id for j in jobs)
    return {
        j.step if j.item is None else f"{j.step}[{j.item}]": outputs.get(j.id, {}) for j in jobs
    }


@pytest.mark.parametrize("pipeline", ["ci", "ports"])
def test_fleet_run_gives_what_the_run_in_process_gives(
    store: Store, store_url: str, workers: list[subprocess.Popen[bytes]], pipeline: str
) -> None:
    """needs, for_each, needs_each, a graph from a step's output, a failure
    and what it skips: the same statuses, reasons and outputs either way."""
    here = stockade(store_url, "run", pipeline, "--json", "--keep-going")
    here_outputs, here_run = _outputs(store), _latest(store)
    fleet = stockade(store_url, "run", pipeline, "--json", "--keep-going", "--fleet")
    assert fleet.returncode == here.returncode, fleet.stderr
    assert _finished(fleet.stdout) == _finished(here.stdout)
    assert _outputs(store) == here_outputs
    # neither run can be resumed: one ran in process, the other ended
    local = stockade(store_url, "runs", here_run, "--resume")
    assert local.returncode == 2 and "did not run with --fleet" in local.stderr
    ended = stockade(store_url, "runs", _latest(store), "--resume")
    assert ended.returncode == 2 and "only a run whose process died resumes" in ended.stderr
    ran = [j for j in store.queries.jobs(limit=None) if j.run_id is None]
    assert ran and all(j.unique_key and j.unique_key.startswith("run:") for j in ran)
    assert {j.worker_id for j in ran if j.worker_id} <= {w.id for w in store.queries.workers()}
    if pipeline == "ports":  # a rerun of a fleet run is one too: the broken port runs again
        again = stockade(store_url, "rerun", "--failed", "--json")
        assert again.returncode == 1, again.stderr
        assert _finished(again.stdout)["build[broken]"] == ("failed", "exit code 1")
        assert len(_fleet_jobs(store, "build[broken]")) == 2


def _gated(tmp_path: Path, items: list[str]) -> Path:
    """A pipeline whose ``work[ITEM]`` jobs each run until ``gates/ITEM`` exists."""
    gates = tmp_path / "gates"
    gates.mkdir()
    (tmp_path / "stockade.yaml").write_text(
        textwrap.dedent(f"""\
        version: 1
        pipelines:
          gated:
            steps:
              plan:
                task:
                  output_format: json_stdout
                  run: |-
                    echo '{json.dumps({"items": items})}'
              work:
                needs: [plan]
                for_each: ${{{{ steps.plan.outputs.items }}}}
                run: >-
                  echo "::progress value=40::waiting for its gate";
                  while [ ! -e {gates}/${{{{ item }}}} ]; do sleep 0.05; done;
                  echo "done ${{{{ item }}}}"; echo "got=${{{{ item }}}}" >> "$STOCKADE_OUTPUT"
              last:
                needs: [work]
                run: echo finished
        """)
    )
    return gates


def _fleet_jobs(store: Store, step: str) -> list[JobRecord]:
    """The queued jobs of ``step`` (by their unique keys)."""
    return [
        j for j in store.queries.jobs(limit=None)
        if j.run_id is None and f":{step}" in (j.unique_key or "")
    ]  # fmt: skip


def _until(
    what: Callable[[], bool],
    message: str,
    timeout: float = 30,
    fail: subprocess.Popen[str] | None = None,
) -> None:
    """Wait for ``what()``; when it does not come, say ``message`` (and what
    the ``fail`` process said, stopped)."""
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            said = ""
            if fail is not None:
                fail.kill()
                said = fail.communicate(timeout=10)[1][-3000:]
            raise AssertionError(f"{message}\n{said}")
        time.sleep(0.1)


def _start_run(url: str, cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, STOCKADE_DATABASE_URL=url)
    return subprocess.Popen(
        [*STOCKADE, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _end(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` if it still runs, and close its pipes."""
    if proc.returncode is None:
        proc.kill()
        proc.communicate(timeout=10)


def test_ctrl_c_cancels_the_runs_queued_and_running_jobs(
    store: Store, store_url: str, workers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """Six jobs on two workers: SIGINT to `run` cancels the running ones and
    any still queued through the store, and the run ends cancelled."""
    _gated(tmp_path, list("abcdef"))
    run = _start_run(store_url, tmp_path, "run", "--fleet", "--json")
    try:
        running = lambda: sum(j.state.value == "running" for j in _fleet_jobs(store, "work"))  # noqa: E731
        _until(lambda: running() >= 4, "the workers did not start four jobs", fail=run)
        progressed = lambda: any(  # noqa: E731
            e["kind"] == "progress"
            for j in _fleet_jobs(store, "work") for e in store.queries.events(j.id)
        )  # fmt: skip
        _until(progressed, "no job's progress reached the store", fail=run)
        assert len(_fleet_jobs(store, "work")) == 6
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=30)
    finally:
        _end(run)
    assert run.returncode == 130, err
    assert {j.state.value for j in _fleet_jobs(store, "work")} == {"cancelled"}
    assert _fleet_jobs(store, "last") == []  # never queued
    finished = _finished(out)
    assert {finished[f"work[{i}]"][0] for i in "abcdef"} == {"cancelled"}
    events = [json.loads(line) for line in out.splitlines()]
    shown = {(e["job"], e["value"], e["message"]) for e in events if e["event"] == "job_progress"}
    assert shown and all(value == 40 and m == "waiting for its gate" for _, value, m in shown)
    assert store.runs.latest().state.value == "cancelled"


def test_resume_adopts_the_jobs_of_a_run_whose_process_died(
    store: Store, store_url: str, workers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """`run --fleet` is killed with work[a] done, work[b] ends while no run
    process lives and work[c] still runs: `runs RUN --resume` finishes the
    run, running none of them twice."""
    gates = _gated(tmp_path, ["a", "b", "c"])
    run = _start_run(store_url, tmp_path, "run", "--fleet", "--json")
    try:
        _until(lambda: len(_fleet_jobs(store, "work")) == 3, "work was not queued")
        (gates / "a").touch()
        _until(lambda: _recorded(store, "work", "a") == "succeeded", "work[a] did not end")
        run.kill()
        run.communicate(timeout=10)
    finally:
        _end(run)
    (gates / "b").touch()
    _until(
        lambda: any(j.state.value == "succeeded" and "[b]" in (j.unique_key or "")
                    for j in _fleet_jobs(store, "work")),
        "work[b] did not end on its worker",
    )  # fmt: skip
    first = store.runs.latest()
    early = stockade(store_url, "runs", first.id, "--resume", cwd=tmp_path)
    assert early.returncode == 2 and "its process is alive" in early.stderr
    _until(lambda: _silent(store, first.id) >= RESUME_SILENCE, "the run kept reporting")
    resumed = _start_run(store_url, tmp_path, "runs", first.id, "--resume", "--json")
    try:
        _until(lambda: _latest(store) != first.id, "no resumed run recorded")
        (gates / "c").touch()
        out, err = resumed.communicate(timeout=30)
    finally:
        _end(resumed)
    assert resumed.returncode == 0, err
    finished = _finished(out)
    assert all(
        finished[name][0] == "succeeded" for name in ("work[a]", "work[b]", "work[c]", "last")
    )
    work = _fleet_jobs(store, "work")
    assert len(work) == 3 and all(j.attempts == 1 for j in work)
    assert len(_fleet_jobs(store, "last")) == 1
    outputs = _outputs(store)
    assert [outputs[f"work[{i}]"]["got"] for i in "abc"] == list("abc")


def _recorded(store: Store, step: str, item: str) -> str | None:
    """The state the latest run recorded for its job ``step[item]``."""
    jobs = store.runs.jobs(store.runs.latest().id)
    return next((j.state.value for j in jobs if (j.step, j.item) == (step, item)), None)


def _silent(store: Store, run_id: str) -> float:
    """Seconds since run ``run_id`` last wrote to the store (by its clock)."""
    return store.queries.now() - store.runs.run(run_id).updated_at


def _latest(store: Store) -> str:
    return store.runs.latest().id
