"""``stockade submit --wait`` as users run it: it shows the job's output as
``stockade exec`` does, says why nobody runs it, and Ctrl-C leaves it be
(or cancels it, when asked)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


def _env(url: str) -> dict[str, str]:
    return dict(os.environ, STOCKADE_DATABASE_URL=url)


def _submit(url: str, tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path]:
    """``submit --wait ARGS`` in the background; its stderr goes to a file read while it runs."""
    subprocess.run([*STOCKADE, "db", "upgrade"], env=_env(url), check=True, capture_output=True)
    err = tmp_path / "stderr"
    with err.open("w") as sink:
        proc = subprocess.Popen(
            [*STOCKADE, "submit", "--wait", "--max-attempts", "1", *args],
            env=_env(url), stdout=subprocess.PIPE, stderr=sink, text=True,
        )  # fmt: skip
    return proc, err


def _await_line(err: Path, text: str, proc: subprocess.Popen[str]) -> str:
    """stderr once it holds ``text`` (polled, generous deadline)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen = err.read_text()
        if text in seen:
            return seen
        assert proc.poll() is None, seen
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} on stderr: {err.read_text()!r}")


def test_submit_wait_streams_output_warns_and_exits_as_exec(store_url: str, tmp_path: Path) -> None:
    """It printed only the id and, with nobody to run the job, waited in silence."""
    line = "echo out; echo err >&2; exit 3"
    proc, err = _submit(store_url, tmp_path, "--queue", "nightly", "--shell", line)
    warned = _await_line(err, "waits: no live worker serves queue 'nightly'", proc)
    assert warned.count("waits:") == 1
    worker = subprocess.run(
        [*STOCKADE, "worker", "--queue", "nightly", "--burst", "-q"],
        env=_env(store_url), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    out, _ = proc.communicate(timeout=60)
    assert out.partition("\n")[2] == "out\n"  # after the id, as exec prints it
    stderr = err.read_text()
    assert "err\n" in stderr and stderr.count("waits:") == 1  # once, not at every poll
    executed = subprocess.run(
        [*STOCKADE, "exec", "--shell", line],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == executed.returncode == 3, stderr
    job_id = out.partition("\n")[0]
    said = [line.replace(job_id, "ID") for line in stderr.splitlines() if job_id in line]
    (exec_said,) = (
        line for line in executed.stderr.splitlines() if line.startswith("stockade: job")
    )
    assert said[-1] == re.sub(r"job \S+", "job ID", exec_said) == "stockade: job ID failed (exit 3)"


@pytest.mark.parametrize(
    ("url_fixture", "cancel"),
    [("sqlite_url", False), ("pg_url", True)],  # each store once: the time budget
    ids=["stays-sqlite", "cancel-on-interrupt-postgresql"],
)
def test_ctrl_c_leaves_the_job_queued_or_cancels_it(
    request: pytest.FixtureRequest, tmp_path: Path, url_fixture: str, cancel: bool
) -> None:
    """Ctrl-C said only "interrupted" and left the user to guess about the job."""
    store_url = request.getfixturevalue(url_fixture)
    extra = ("--cancel-on-interrupt",) if cancel else ()
    proc, err = _submit(store_url, tmp_path, *extra, "--", "true")
    _await_line(err, "waits: no live worker", proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    job_id = out.strip()
    lines = err.read_text().splitlines()
    assert proc.returncode == 130 and len(lines) == 2, lines
    if cancel:
        assert lines[1] == f"stockade: interrupted: {job_id} cancelled"
    else:
        assert lines[1] == (
            f"stockade: interrupted: job {job_id} stays queued; cancel with "
            f"`stockade cancel {job_id}` (or submit with --cancel-on-interrupt)"
        )
    shown = subprocess.run(
        [*STOCKADE, "show", job_id, "--json"], env=_env(store_url),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(shown.stdout)["state"] == ("cancelled" if cancel else "queued")


def test_cancel_on_interrupt_needs_wait() -> None:
    done = subprocess.run(
        [*STOCKADE, "submit", "--cancel-on-interrupt", "--", "true"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--cancel-on-interrupt is for --wait" in done.stderr
