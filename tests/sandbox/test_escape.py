"""A root job that leaves its slot cgroup still ends at its timeout, and dies."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.sandbox.cgroup import cgroup2_root

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


@pytest.fixture
def elsewhere() -> Iterator[Path]:
    """A cgroup beside stockade's own, for the job to move itself into."""
    root = cgroup2_root()
    if os.geteuid() != 0 or root is None or not os.access(root, os.W_OK):
        pytest.skip("needs root and a writable cgroup v2 tree")
    path = root / f"stockade-escape-test-{os.getpid()}"
    path.mkdir()
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):  # a failed run leaves its processes here
            (path / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + 5
        while (path / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.01)
        path.rmdir()


def _dead(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX"


@pytest.mark.parametrize("trap", ["", "trap '' TERM;"], ids=["stops-on-term", "ignores-term"])
def test_a_job_that_left_its_cgroup_still_times_out(
    elsewhere: Path, tmp_path: Path, trap: str
) -> None:
    pids = tmp_path / "pids"
    line = (
        f"{trap} echo $$ > {elsewhere}/cgroup.procs; "
        f"sleep 600 & echo $! > {pids}; echo $$ >> {pids}; wait"
    )
    proc = subprocess.Popen(
        [*STOCKADE, "exec", "--timeout", "2s", "--kill-grace", "1s", "--shell", line],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        _, err = proc.communicate(timeout=60)  # before the fix it ran the full 600 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 124, err
    assert "timed_out" in err
    escaped = [int(pid) for pid in pids.read_text().split()]
    assert len(escaped) == 2
    deadline = time.monotonic() + 5
    while not all(_dead(pid) for pid in escaped) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(_dead(pid) for pid in escaped), escaped
