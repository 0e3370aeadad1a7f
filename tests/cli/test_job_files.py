"""Files the job controls, made hostile from inside the job, read by a real
``stockade exec``: in the local sandbox and in bubblewrap, where the job is
another user in other namespaces and writes the files from inside.

A FIFO at a path stockade reads once froze the whole process in a blocking
open (SIGTERM could not stop it); a 1 GiB sparse file took it to gigabytes
of memory. Each case runs the CLI as a child with a deadline, so a hang
fails the test, and measures its peak RSS (``ru_maxrss``) to compare with a
``true`` job's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stockade.sandbox.registry import backend_class

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
DEADLINE = 60.0  # generous: the job itself takes milliseconds
RSS_GROWTH_MIB = 64
BACKENDS = ["local", "bwrap"]
#: Runs argv[2:] and writes its peak RSS in KiB to argv[1]. A child's
#: ``ru_maxrss`` starts at its parent's at the fork, so the command is forked
#: from this small interpreter rather than from the test process.
MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    usable = backend_class(name).availability()
    if not usable.usable:
        pytest.skip(f"{name} backend not usable here: {usable.reason} (fix: {usable.fix})")
    return name


class Exec:
    """One finished ``stockade exec``: its result record, stderr and peak RSS."""

    def __init__(self, result: dict[str, object], stderr: str, maxrss_kib: int) -> None:
        self.result = result
        self.stderr = stderr
        self.maxrss_kib = maxrss_kib


def stockade_exec(tmp_path: Path, backend: str, line: str, *options: str) -> Exec:
    """``stockade exec --shell LINE`` in a fresh workspace the job may write to."""
    workspace = tmp_path / f"ws-{time.monotonic_ns()}"
    workspace.mkdir()
    workspace.chmod(0o777)  # bubblewrap runs the job as nobody
    record, err = tmp_path / "result.json", tmp_path / "stderr.txt"
    argv = [
        *STOCKADE, "exec", "--sandbox", backend, "-C", str(workspace),
        "--data-dir", str(tmp_path / "data"), "--result", str(record), *options,
        "--shell", line,
    ]  # fmt: skip
    rss = tmp_path / "maxrss"
    with open(err, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", MEASURE, str(rss), *argv],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        proc.wait(DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"stockade exec did not end within {DEADLINE}s: {line}")
    return Exec(json.loads(record.read_text()), err.read_text(), int(rss.read_text()))


def _output_error(run: Exec, *fragments: str) -> None:
    result = run.result
    assert (result["outcome"], result["reason"]) == ("failed", "output_error"), run.stderr
    for fragment in fragments:
        assert fragment in str(result["error"])


def test_a_fifo_as_the_file_output_ends_the_job_with_output_error(
    tmp_path: Path, backend: str
) -> None:
    run = stockade_exec(tmp_path, backend, "mkfifo out.json", "--output-format", "file:out.json")
    _output_error(run, "output file 'out.json' is a FIFO, not a regular file")


def test_a_fifo_as_stockade_output_ends_the_job_with_output_error(
    tmp_path: Path, backend: str
) -> None:
    run = stockade_exec(tmp_path, backend, 'rm "$STOCKADE_OUTPUT"; mkfifo "$STOCKADE_OUTPUT"')
    _output_error(run, "$STOCKADE_OUTPUT is a FIFO, not a regular file")


def test_a_fifo_as_stockade_state_does_not_stop_stockade(tmp_path: Path, backend: str) -> None:
    # stockade writes the state file before the job starts and never reads it
    # back (saved state comes from save-state commands): the job succeeds.
    line = 'rm "$STOCKADE_STATE"; mkfifo "$STOCKADE_STATE"; echo "::save-state name=k::v"'
    run = stockade_exec(tmp_path, backend, line)
    assert (run.result["outcome"], run.result["state"]) == ("succeeded", {"k": "v"}), run.stderr


def test_a_symlink_out_of_the_workspace_is_refused(tmp_path: Path, backend: str) -> None:
    secret = tmp_path / "host-secret.json"
    secret.write_text('{"token": "only-for-the-host"}')
    run = stockade_exec(
        tmp_path, backend, f"ln -s {secret} out.json", "--output-format", "file:out.json"
    )
    _output_error(run, "output file 'out.json' escapes the workspace")
    assert "only-for-the-host" not in json.dumps(run.result)
    run = stockade_exec(
        tmp_path, backend, f'rm "$STOCKADE_OUTPUT"; ln -s {secret} "$STOCKADE_OUTPUT"'
    )
    _output_error(run, "$STOCKADE_OUTPUT cannot be read: it is reached through a symlink")


def test_sparse_output_files_are_refused_without_growing_memory(
    tmp_path: Path, backend: str
) -> None:
    baseline = stockade_exec(tmp_path, backend, "true")
    assert baseline.result["outcome"] == "succeeded", baseline.stderr
    env_file = stockade_exec(tmp_path, backend, 'truncate -s 1G "$STOCKADE_OUTPUT"')
    file_output = stockade_exec(
        tmp_path, backend, "truncate -s 1G out.json", "--output-format", "file:out.json"
    )
    for run in (env_file, file_output):
        growth_mib = (run.maxrss_kib - baseline.maxrss_kib) / 1024
        assert growth_mib < RSS_GROWTH_MIB, (growth_mib, run.result["error"])
    limit = f"over the limit of {1 << 20} bytes (1MiB); raise max_output (--max-output SIZE"
    _output_error(env_file, f"$STOCKADE_OUTPUT is {1 << 30} bytes, {limit}")
    _output_error(file_output, f"output file 'out.json' is {1 << 30} bytes, {limit}")


def test_a_file_output_within_max_output_is_read(tmp_path: Path, backend: str) -> None:
    line = 'printf \'{"n": "%s"}\' "$(head -c 3000 /dev/zero | tr "\\0" x)" > out.json'
    small = stockade_exec(
        tmp_path, backend, line, "--output-format", "file:out.json", "--max-output", "4KiB"
    )
    assert small.result["outcome"] == "succeeded", small.stderr
    assert small.result["outputs"] == {"n": "x" * 3000}
    big = stockade_exec(
        tmp_path, backend, line, "--output-format", "file:out.json", "--max-output", "2KiB"
    )
    _output_error(big, "output file 'out.json' is 3009 bytes, over the limit of 2048 bytes")
