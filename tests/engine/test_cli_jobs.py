"""The job commands as users run them: subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


def _run(
    *args: str, url: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if url:
        env["STOCKADE_DATABASE_URL"] = url
    return subprocess.run(
        [*STOCKADE, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_submit_work_and_inspect(store_url: str, tmp_path: Path) -> None:
    (tmp_path / "stockade.yaml").write_text(
        "version: 1\ntasks:\n  greet:\n    run: 'echo hello $INPUT_NAME; exit 3'\n    max_attempts: 1\n"
    )
    submitted = _run("submit", "greet", "--input", '{"name": "ann"}', url=store_url, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    adhoc = _run("submit", "--priority", "5", "--", "echo", "first", url=store_url)
    worker = _run("worker", "--slots", "1", "--burst", "-q", url=store_url, cwd=tmp_path)
    assert worker.returncode == 0, worker.stderr
    listed = _run("jobs", "--json", url=store_url)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["id"]: (r["task"], r["state"], r["attempts"], r["outcome"]) for r in rows} == {
        job_id: ("greet", "failed", 1, "failed"),
        adhoc.stdout.strip(): ("exec", "succeeded", 1, "succeeded"),
    }
    assert _run("logs", job_id[:12], url=store_url).stdout == "hello ann\n"
    shown = _run("show", job_id, url=store_url).stdout
    assert "state     failed" in shown and "attempt 1: failed exit 3" in shown
    assert "  used cpu " in shown and "s user " in shown  # what the attempt used
    record = json.loads(_run("show", job_id, "--json", url=store_url).stdout)
    assert record["reason"] == "failed"  # a value of the one reason enum, as stored
    assert [a["reason"] for a in record["attempt_records"]] == ["failed"]


def test_submit_wait_exits_with_the_jobs_status(sqlite_url: str) -> None:
    env = dict(os.environ, STOCKADE_DATABASE_URL=sqlite_url)
    _run("db", "upgrade", url=sqlite_url)
    worker = subprocess.Popen([*STOCKADE, "worker", "--slots", "1", "-q"], env=env)
    try:
        done = _run("submit", "--wait", "--max-attempts", "1", "--shell", "exit 4", url=sqlite_url)
    finally:
        worker.terminate()
        worker.wait(30)
    assert done.returncode == 4
    assert "failed" in done.stderr


def test_submit_wait_and_exec_agree_on_a_command_that_cannot_start(store_url: str) -> None:
    """One exit-status policy: 127, like a shell, from both (submit --wait said 1)."""
    missing = "/nonexistent/stockade-no-such-command"
    env = dict(os.environ, STOCKADE_DATABASE_URL=store_url)
    _run("db", "upgrade", url=store_url)
    worker = subprocess.Popen([*STOCKADE, "worker", "--slots", "1", "-q"], env=env)
    try:
        waited = _run("submit", "--wait", "--max-attempts", "1", "--", missing, url=store_url)
    finally:
        worker.terminate()
        worker.wait(30)
    executed = subprocess.run(
        [*STOCKADE, "exec", "--", missing], capture_output=True, text=True, timeout=60, check=False
    )
    assert (waited.returncode, executed.returncode) == (127, 127), waited.stderr


def test_errors_are_one_line() -> None:
    cases = {
        ("jobs", "--database-url", "mysql://x/y"): "unsupported database 'mysql'",
        (
            "jobs",
            "--database-url",
            "postgresql://postgres@127.0.0.1:1/test",
        ): "cannot use the database",
        ("show", "nope", "--database-url", "sqlite:///:memory:"): "no job 'nope' in the store",
        ("cancel",): "give job ids",
    }
    for args, message in cases.items():
        done = _run(*args)
        assert done.returncode in (1, 2), (args, done.stderr)
        assert done.stderr.count("\n") == 1 and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_cancel_and_retry(sqlite_url: str) -> None:
    job = _run("submit", "--delay", "1h", "--", "true", url=sqlite_url).stdout.strip()
    assert _run("cancel", job, "nope1234", url=sqlite_url).stdout == f"{job} cancelled\n"
    again = _run("retry", job, url=sqlite_url)
    assert (again.returncode, again.stdout) == (0, f"{job} queued\n")
    assert _run("cancel", "--task", "exec", url=sqlite_url).stdout == f"{job} cancelled\n"


def test_worker_runs_every_slot_in_its_sandbox(sqlite_url: str, tmp_path: Path) -> None:
    if not Path("/usr/bin/bwrap").exists():
        import pytest

        pytest.skip("bubblewrap is not installed (make test installs it)")
    job = _run(
        "submit", "--", "sh", "-c", "id -u; touch /usr/stockade-x 2>&1 || true", url=sqlite_url
    )
    worker = _run("worker", "--slots", "1", "--burst", "-q", "--sandbox", "bwrap", url=sqlite_url,
                  cwd=tmp_path)  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    out = _run("logs", job.stdout.strip(), url=sqlite_url).stdout
    assert out.splitlines()[0] == "65534"
    assert "Read-only file system" in out
    assert not Path("/usr/stockade-x").exists()


def test_worker_with_an_unknown_sandbox_says_so(sqlite_url: str) -> None:
    worker = _run("worker", "--burst", "--sandbox", "bwarp", url=sqlite_url)
    assert worker.returncode == 2
    assert "bwarp" in worker.stderr and len(worker.stderr.strip().splitlines()) == 1


def test_a_hang_is_dumped_into_the_stored_log(store_url: str, tmp_path: Path) -> None:
    """on_idle_timeout's dump through a worker: the stack is in the store's log,
    and the stored attempt says where."""
    (tmp_path / "hang.py").write_text(
        "import time\n\ndef wait_forever():\n    while True:\n        time.sleep(60)\n\n"
        "print('started', flush=True)\nwait_forever()\n"
    )
    (tmp_path / "stockade.yaml").write_text(
        "version: 1\ntasks:\n  hang:\n"
        f"    command: [{sys.executable}, hang.py]\n    max_attempts: 1\n"
        "    idle_timeout: 1s\n    on_idle_timeout: {dump: SIGABRT, dump_wait: 10s}\n"
    )
    job_id = _run("submit", "hang", url=store_url, cwd=tmp_path).stdout.strip()
    worker = _run("worker", "--slots", "1", "--burst", "-q", url=store_url, cwd=tmp_path)
    assert worker.returncode == 0, worker.stderr
    shown = _run("show", job_id, url=store_url).stdout
    assert "attempt 1: timed_out idle_timeout" in shown, shown
    assert "  dump SIGABRT on idle_timeout: in the log after stderr byte 0, stdout byte 8" in shown
    logs = _run("logs", job_id, url=store_url)
    assert "started\n" in logs.stdout and "in wait_forever" in logs.stderr, logs.stderr
