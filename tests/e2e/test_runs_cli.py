"""``stockade runs``, ``rerun`` and cancellation through the run row, end to end:
real CLI processes on one data directory."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]

PIPELINE = """
pipelines:
  p:
    steps:
      build:
        for_each: [x, y, z]
        run: 'echo built >> "count-${{ item }}"; test -e fixed -o "${{ item }}" != y'
      pack:
        needs: [build]
        run: echo packed >> count-pack
  slow:
    steps:
      wait:
        for_each: [a, b]
        run: 'echo started; sleep 30'
"""


def stockade(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STOCKADE, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def _project(tmp_path: Path) -> Path:
    (tmp_path / "stockade.yaml").write_text(textwrap.dedent(PIPELINE))
    return tmp_path


def _wait_running(root: Path, step: str, jobs: int = 1) -> None:
    """Wait until the newest run has ``jobs`` jobs of ``step`` running."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        runs = stockade(root, "runs", "--json").stdout.splitlines()
        if runs and json.loads(runs[0])["steps"][step]["counts"].get("running") == jobs:
            return
        time.sleep(0.2)
    raise AssertionError(f"the run never had {jobs} job(s) of {step} running")


def _counts(root: Path) -> dict[str, int]:
    return {p.name[6:]: len(p.read_text().splitlines()) for p in root.glob("count-*")}


def test_rerun_failed_does_only_the_failed_work(tmp_path: Path) -> None:
    root = _project(tmp_path)
    first = stockade(root, "run", "p", "--plain")
    assert first.returncode == 1, first.stderr
    assert _counts(root) == {"x": 1, "y": 1, "z": 1}  # pack never ran: build[y] failed
    (root / "fixed").touch()

    second = stockade(root, "rerun", "--failed", "--plain")
    assert second.returncode == 0, second.stdout + second.stderr
    # x and z were reused from the first run; only y and what needs it ran
    assert _counts(root) == {"x": 1, "y": 2, "z": 1, "pack": 1}

    runs = [json.loads(line) for line in stockade(root, "runs", "--json").stdout.splitlines()]
    assert [r["state"] for r in runs] == ["succeeded", "failed"]
    assert runs[0]["source_run"] == runs[1]["id"]
    view = json.loads(stockade(root, "runs", runs[0]["id"], "--json").stdout)
    reasons = {j["job"]: j["reason"] for j in view["jobs"]}
    assert reasons["build[x]"] == f"reused from run {runs[1]['id']}"
    assert reasons["build[y]"] is None
    # the jobs are ordinary jobs of the store
    listed = stockade(root, "jobs", "--run", runs[0]["id"], "--json").stdout.splitlines()
    assert len(listed) == 4
    job_id = next(j["id"] for j in view["jobs"] if j["job"] == "build[y]")
    assert "run       " + runs[0]["id"] in stockade(root, "show", job_id).stdout


def test_rerun_one_job_reuses_the_rest(tmp_path: Path) -> None:
    root = _project(tmp_path)
    nothing = stockade(root, "rerun")
    assert nothing.returncode == 2 and "no run in the store to rerun" in nothing.stderr
    (root / "fixed").touch()
    assert stockade(root, "run", "p", "--plain").returncode == 0
    again = stockade(root, "rerun", "build/z", "--plain")
    assert again.returncode == 0, again.stderr
    # only build[z] ran again; pack (downstream) did not run
    assert _counts(root) == {"x": 1, "y": 1, "z": 2, "pack": 1}

    bad_step = stockade(root, "rerun", "latest", "nope")
    assert bad_step.returncode == 2
    assert "has no step 'nope' (steps: build, pack)" in bad_step.stderr
    # one argument naming neither a run nor a step: an unknown run, saying both
    neither = stockade(root, "rerun", "nosuchrun")
    assert neither.returncode == 1, neither.stderr
    assert "no run 'nosuchrun' in the store, nor is it a step of the newest run" in (neither.stderr)
    assert "(pipeline 'p': build, pack)" in neither.stderr
    bad_item = stockade(root, "rerun", "latest", "build/w")
    assert bad_item.returncode == 2
    assert "has no job build[w] (its jobs of build: build[x], build[y], build[z])" in (
        bad_item.stderr
    )
    unknown = stockade(root, "rerun", "ffffffffff", "build")
    assert unknown.returncode == 1 and "no run 'ffffffffff' in the store" in unknown.stderr


def test_rerun_of_one_job_runs_only_that_job(tmp_path: Path) -> None:
    """Another job of the step that failed in the source is not run with it."""
    root = _project(tmp_path)
    assert stockade(root, "run", "p", "--plain").returncode == 1  # build[y] fails
    again = stockade(root, "rerun", "build/z", "--plain")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _counts(root) == {"x": 1, "y": 1, "z": 2}
    assert "reused    build[x]" in again.stdout and "cached" not in again.stdout
    view = json.loads(stockade(root, "runs", "latest", "--json").stdout)
    status = {j["job"]: (j["status"], j["reason"]) for j in view["jobs"]}
    assert status["build[z]"] == ("succeeded", None)
    assert status["build[y]"] == (
        "skipped", "not rerun: no success of it to reuse in the source run"
    )  # fmt: skip


def test_a_cancel_asked_from_another_process_stops_the_run(tmp_path: Path) -> None:
    root = _project(tmp_path)
    proc = subprocess.Popen(
        [*STOCKADE, "run", "slow", "--plain"], cwd=root, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        run_id = None
        while time.monotonic() < deadline:
            listed = stockade(root, "runs", "--json").stdout.splitlines()
            runs = [json.loads(line) for line in listed]
            if runs and runs[0]["steps"]["wait"]["counts"].get("running") == 2:
                run_id = runs[0]["id"]
                break
            time.sleep(0.2)
        assert run_id is not None, "the run never had both jobs running"
        asked = time.monotonic()
        cancel = stockade(root, "runs", run_id, "--cancel")
        assert cancel.stdout.strip() == f"{run_id} cancelling"
        status = proc.wait(timeout=15)
        took = time.monotonic() - asked
    finally:
        proc.kill()
        proc.communicate()
    assert status == 130
    assert took < 8  # noticed within about a second, then the jobs' stop grace
    view = json.loads(stockade(root, "runs", run_id, "--json").stdout)
    assert view["state"] == "cancelled" and view["cancel_requested"]
    assert {j["status"] for j in view["jobs"]} == {"cancelled"}
    # a pipeline job's log is in the store: `stockade logs` reads it from there
    logs = stockade(root, "logs", view["jobs"][0]["id"], "-f")
    assert logs.returncode == 0 and logs.stdout == "started\n"
    again = stockade(root, "runs", run_id, "--cancel")
    assert again.stdout.strip() == f"{run_id} already cancelled"
    # a pipeline job's log by its name: in the latest run, or in --run RUN
    by_name = stockade(root, "logs", "wait[a]")
    assert by_name.returncode == 0 and by_name.stdout == "started\n", by_name.stderr
    assert stockade(root, "logs", "wait[b]", "--run", run_id).stdout == "started\n"
    unknown = stockade(root, "logs", "wait[c]", "--run", run_id)
    assert unknown.returncode == 1
    assert f"no job 'wait[c]' in the store nor in run {run_id} (its jobs: wait[a], wait[b])" in (
        unknown.stderr
    )
    latest = stockade(root, "runs", "latest", "--cancel")
    assert latest.stdout.strip() == f"{run_id} already cancelled", latest.stderr


def test_a_second_ctrl_c_forces_and_the_run_is_still_recorded(tmp_path: Path) -> None:
    (tmp_path / "stockade.yaml").write_text(
        textwrap.dedent(
            """
            tasks:
              stubborn:
                run: 'trap "" TERM; echo up; sleep 60'
                kill_grace: 60s
            pipelines:
              p:
                steps:
                  hold: {task: stubborn}
            """
        )
    )
    proc = subprocess.Popen(
        [*STOCKADE, "run", "--plain"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_running(tmp_path, "hold")
        time.sleep(0.5)  # let the job's shell set its trap
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert proc.poll() is None  # the job ignores SIGTERM: the clean stop waits its grace
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        status = proc.wait(timeout=20)
    finally:
        proc.kill()
        proc.communicate()
    assert status == 130 and time.monotonic() - started < 10
    view = json.loads(stockade(tmp_path, "runs", "latest", "--json").stdout)
    assert view["state"] == "cancelled"
    (job,) = view["jobs"]
    assert job["status"] == "cancelled"


def test_a_run_whose_process_was_killed_ends_abandoned_once_silent(tmp_path: Path) -> None:
    (tmp_path / "stockade.yaml").write_text(
        textwrap.dedent(
            """
            pipelines:
              p:
                steps:
                  hold: {run: 'echo up; sleep 3'}
            """
        )
    )
    proc = subprocess.Popen(
        [*STOCKADE, "run", "--plain"], cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_running(tmp_path, "hold")
        proc.kill()  # SIGKILL: nothing of stockade run gets to record its end
        proc.wait(timeout=10)
    finally:
        proc.kill()
    # Freshly silent: still running (a reader must not end a live run early).
    view = json.loads(stockade(tmp_path, "runs", "latest", "--json").stdout)
    assert view["state"] == "running", view
    # A minute of silence, as the store's clock sees it: the run is abandoned.
    with sqlite3.connect(Path(os.environ["STOCKADE_DATA_DIR"]) / "stockade.db") as db:
        db.execute("UPDATE runs SET updated_at = updated_at - 120")
    view = json.loads(stockade(tmp_path, "runs", "latest", "--json").stdout)
    assert (view["state"], view["reason"]) == (
        "failed", "abandoned: its stockade run process stopped reporting",
    )  # fmt: skip
    (job,) = view["jobs"]
    assert (job["status"], job["reason"]) == ("failed", "abandoned"), job
    listed = [json.loads(line) for line in stockade(tmp_path, "jobs", "--json").stdout.splitlines()]
    assert [(j["state"], j["outcome"]) for j in listed] == [("failed", "lost")]


def test_a_closed_stdout_ends_the_view_and_the_run_goes_on(tmp_path: Path) -> None:
    """``stockade run … | head -1``: no BrokenPipeError, the run's own exit
    status, and the run recorded to its end."""
    (tmp_path / "stockade.yaml").write_text(
        textwrap.dedent(
            """
            pipelines:
              p:
                steps:
                  first:
                    run: echo one; sleep 0.5; echo two
                  then:
                    needs: [first]
                    for_each: [x, y, z]
                    run: echo "${{ item }}" > "done-${{ item }}"
            """
        )
    )
    for view in ("--plain", "--json"):
        proc = subprocess.Popen(
            [*STOCKADE, "run", view], cwd=tmp_path, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline()
        proc.stdout.close()  # what `head -1` does
        status = proc.wait(timeout=30)
        errors = proc.stderr.read()
        proc.stderr.close()
        assert status == 0, errors
        assert "Traceback" not in errors and "BrokenPipe" not in errors
        run = json.loads(stockade(tmp_path, "runs", "latest", "--json").stdout)
        assert run["state"] == "succeeded"
        assert {j["job"]: j["status"] for j in run["jobs"]} == {
            "first": "succeeded", "then[x]": "succeeded", "then[y]": "succeeded",
            "then[z]": "succeeded",
        }  # fmt: skip
        for item in "xyz":
            (tmp_path / f"done-{item}").unlink()
