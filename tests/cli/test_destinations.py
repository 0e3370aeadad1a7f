"""Exit 2 means nothing ran: every destination is checked before the launch.

Each case gives a command that would create a marker file; the marker's
absence shows the job never started (real CLI subprocesses).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
PIPELINE = """\
version: 1
tasks:
  mark:
    run: 'touch marker'
pipelines:
  main:
    steps:
      m:
        task: mark
"""


def stockade(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STOCKADE, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def assert_refused(proc: subprocess.CompletedProcess[str], cwd: Path, message: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (cwd / "marker").exists(), "the job ran"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--result", "/nonexistent/dir/r.json"], "directory '/nonexistent/dir' does not exist"),
        (["--result", "."], "is a directory"),
        (["--result", "sub/r.json"], "does not exist; create it first"),
        (["--output-format", "file:/etc/passwd"], "is absolute"),
        (["--output-format", "file:../out.json"], "escapes the workspace"),
        (["--output-format", "file:a/../../out.json"], "escapes the workspace"),
        (["--data-dir", "afile/data"], "cannot use data directory"),
        (["--workdir", "nowhere"], "does not exist or is not a directory"),
    ],
)
def test_exec_refuses_a_bad_destination_before_running(
    tmp_path: Path, options: list[str], message: str
) -> None:
    (tmp_path / "afile").write_text("")
    proc = stockade("exec", *options, "--", "touch", os.fspath(tmp_path / "marker"), cwd=tmp_path)
    assert_refused(proc, tmp_path, message)


def test_exec_with_a_good_result_path_still_runs(tmp_path: Path) -> None:
    proc = stockade("exec", "--result", "r.json", "--", "touch", "marker", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "marker").exists() and (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--junit", "/nonexistent/dir/j.xml"], "--junit '/nonexistent/dir/j.xml': directory"),
        (["--junit", "."], "--junit '.' is a directory"),
        (["--data-dir", "afile/data"], "--data-dir 'afile/data':"),
    ],
)
def test_run_refuses_a_bad_destination_before_running(
    tmp_path: Path, options: list[str], message: str
) -> None:
    (tmp_path / "stockade.yaml").write_text(PIPELINE)
    (tmp_path / "afile").write_text("")
    env_dir = tmp_path / ".stockade"
    proc = stockade("run", "--plain", "--data-dir", str(env_dir), *options, cwd=tmp_path)
    assert_refused(proc, tmp_path, message)


def test_run_with_good_destinations_still_runs(tmp_path: Path) -> None:
    (tmp_path / "stockade.yaml").write_text(PIPELINE)
    proc = stockade(
        "run", "--plain", "--data-dir", os.fspath(tmp_path / "d"), "--junit", "j.xml", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "marker").exists() and (tmp_path / "j.xml").exists()
