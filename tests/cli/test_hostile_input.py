"""Hostile values on the command line and in stockade.yaml: exit 2 (or 1 for
`validate`), one line, no traceback, nothing queued."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
HUGE = str(10**26)
NOT_TEXT = '{"name": "\\ud800"}'  # JSON text: the escape of a lone surrogate


def stockade(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "STOCKADE_DATABASE_URL"}
    return subprocess.run(
        [*STOCKADE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60,
        check=False,
    )  # fmt: skip


def one_line(proc: subprocess.CompletedProcess[str], status: int, starts: str) -> str:
    assert (proc.returncode, proc.stdout) == (status, ""), proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(starts), line
    return line


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "stockade.yaml").write_text(
        "version: 1\ntasks:\n  hello:\n    run: 'echo \"$INPUT_NAME\"'\n"
    )
    return tmp_path


@pytest.mark.parametrize("source", ["argument", "file"])
def test_exec_input_that_is_not_text_is_one_line(project: Path, source: str) -> None:
    value = NOT_TEXT
    if source == "file":
        (project / "input.json").write_text(NOT_TEXT)
        value = "@input.json"
    proc = stockade("exec", "--input", value, "--shell", 'echo "$INPUT_NAME"', cwd=project)
    where = "--input" if source == "argument" else "input.json"
    line = one_line(proc, 2, f"stockade: error: {where}: input.name holds a lone UTF-16 surrogate")
    assert "which is not text" in line


def test_exec_input_nested_too_deeply_is_one_line(project: Path) -> None:
    (project / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    proc = stockade("exec", "--input", "@deep.json", "--", "true", cwd=project)
    one_line(proc, 2, "stockade: error: deep.json is nested too deeply to be job input")


def test_submit_input_that_is_not_text_queues_nothing(project: Path) -> None:
    proc = stockade("submit", "hello", "--input", NOT_TEXT, cwd=project)
    one_line(proc, 2, "stockade: error: --input: input.name holds a lone UTF-16 surrogate")
    listed = stockade("jobs", cwd=project)
    assert listed.returncode == 0 and listed.stdout.splitlines()[1:] == []


@pytest.mark.parametrize("key", ["priority", "max_attempts"])
def test_a_number_the_store_cannot_hold_fails_validate_not_submit(project: Path, key: str) -> None:
    config = project / "stockade.yaml"
    config.write_text(config.read_text() + f"    {key}: {HUGE}\n")
    found = stockade("validate", cwd=project)
    assert found.returncode == 1 and "Traceback" not in found.stderr
    assert f"stockade.yaml:5: tasks.hello.{key}: must be less than or equal to 2147483647" in (
        found.stderr
    )
    proc = stockade("submit", "hello", cwd=project)
    assert (proc.returncode, proc.stdout) == (2, "") and "Traceback" not in proc.stderr
    assert stockade("jobs", cwd=project).stdout.splitlines()[1:] == []


@pytest.mark.parametrize("option", ["--priority", "--max-attempts"])
def test_submit_options_the_store_cannot_hold_are_one_line(project: Path, option: str) -> None:
    proc = stockade("submit", "hello", option, HUGE, cwd=project)
    one_line(proc, 2, f"stockade: error: Invalid value for '{option}'")
