"""The result cache (``cache: key: [...]``) through the real CLI: a second
run does no work, a changed input re-runs only its job, failures are never
stored, ``stockade cache clear`` forgets everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]

CONFIG = """
pipelines:
  p:
    steps:
      build:
        for_each: [a, b]
        cache:
          key: ["files: src/${{ item }}.txt", "env: FLAVOR"]
        run: >-
          echo "${{ item }}" >> ran.log;
          echo "size=$(wc -c < src/${{ item }}.txt)" >> "$STOCKADE_OUTPUT"
      after:
        needs: [build]
        cache:
          key: ["${{ steps.build.items.a.size }}-${{ steps.build.items.b.size }}"]
        run: echo "${{ steps.build.items.a.size }} ${{ steps.build.items.b.size }}" >> after.log
"""


def _run(workspace: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [*STOCKADE, *args], cwd=workspace, capture_output=True, text=True, timeout=60,
        check=False, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _jobs(stdout: str) -> dict[str, dict[str, Any]]:
    events = [json.loads(line) for line in stdout.splitlines()]
    return {e["job"]: e for e in events if e["event"] == "job_finish"}


def _workspace(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("alpha\n")
    (tmp_path / "src" / "b.txt").write_text("beta\n")
    (tmp_path / "stockade.yaml").write_text(textwrap.dedent(CONFIG))
    return tmp_path


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_second_run_does_no_work(tmp_path: Path, _data_dir: Path) -> None:
    workspace = _workspace(tmp_path)
    first = _jobs(_run(workspace, "run", "--json"))
    assert not any(job["cached"] for job in first.values())
    assert sorted(_lines(workspace / "ran.log")) == ["a", "b"]
    assert _lines(workspace / "after.log") == ["6 5"]

    second = _jobs(_run(workspace, "run", "--json"))
    assert {name: job["cached"] for name, job in second.items()} == {
        "build[a]": True, "build[b]": True, "after": True,
    }  # fmt: skip
    assert second["build[a]"]["status"] == "succeeded"
    assert second["build[b]"]["outputs"]["size"] == "5"  # restored from the stored result
    assert sorted(_lines(workspace / "ran.log")) == ["a", "b"]  # nothing ran again
    assert _lines(workspace / "after.log") == ["6 5"]
    assert len(list((_data_dir / "cache").glob("*.json"))) == 3

    # a changed file re-runs only the job whose key reads it (and what reads its output)
    (workspace / "src" / "b.txt").write_text("beta, longer\n")
    plain = _run(workspace, "run", "--plain")
    assert "cached    build[a]" in plain
    assert "succeeded build[b]" in plain and "succeeded after" in plain
    assert "succeeded (1 cached)" in plain  # the summary table's build row
    assert sorted(_lines(workspace / "ran.log")) == ["a", "b", "b"]
    assert _lines(workspace / "after.log") == ["6 5", "6 13"]

    # an env entry of the key: another value is another key
    _run(workspace, "run", "--plain", env={"FLAVOR": "debug"})
    assert sorted(_lines(workspace / "ran.log")) == ["a", "a", "b", "b", "b"]

    cleared = _run(workspace, "cache", "clear")
    assert cleared.startswith("removed 7 cached results from ")
    assert not list((_data_dir / "cache").glob("*.json"))
    third = _jobs(_run(workspace, "run", "--json"))
    assert not any(job["cached"] for job in third.values())
    assert len(_lines(workspace / "ran.log")) == 7


def test_failures_are_not_cached(tmp_path: Path) -> None:
    (tmp_path / "stockade.yaml").write_text(
        textwrap.dedent(
            """
            pipelines:
              p:
                steps:
                  flaky:
                    cache: {key: [v1]}
                    run: echo ran >> ran.log; exit 3
            """
        )
    )
    for _ in range(2):
        done = subprocess.run(
            [*STOCKADE, "run", "--json"], cwd=tmp_path, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 1
        assert _jobs(done.stdout)["flaky"]["cached"] is False
    assert _lines(tmp_path / "ran.log") == ["ran", "ran"]


def test_a_bad_key_is_reported_before_the_run(tmp_path: Path) -> None:
    (tmp_path / "stockade.yaml").write_text(
        "pipelines:\n  p:\n    steps:\n      s:\n        cache: {key: ['${{ steps.nope.outputs.x }}']}\n"
        "        run: 'true'\n"
    )
    done = subprocess.run(
        [*STOCKADE, "run"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "unknown step 'nope'" in done.stderr


HOSTILE_KEY = """
pipelines:
  p:
    steps:
      make:
        run: >-
          mkdir -p build && echo built > build/ok.txt && mkfifo build/fifo &&
          ln -s %s build/outside && truncate -s %s build/sparse
      use:
        needs: [make]
        cache: {key: ["files: build/**"]}
        run: echo used >> used.log
"""


def _hostile_run(tmp_path: Path, sparse: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "build").mkdir(exist_ok=True)
    for name in ("fifo", "outside", "sparse"):
        (tmp_path / "build" / name).unlink(missing_ok=True)
    (tmp_path / "stockade.yaml").write_text(HOSTILE_KEY % (tmp_path / "outside.txt", sparse))
    try:
        return subprocess.run(
            [*STOCKADE, "run", "--json"], cwd=tmp_path, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"stockade run did not end: {exc}")


def test_key_files_an_earlier_job_made_hostile(tmp_path: Path) -> None:
    """A FIFO is left out, a symlink out of the workspace counts by its name
    only, and a sparse terabyte fails the step at once instead of being hashed
    for hours."""
    (tmp_path / "outside.txt").write_text("host file, first version")
    huge = _hostile_run(tmp_path, "1T")
    assert huge.returncode == 1
    use = _jobs(huge.stdout)["use"]
    assert use["status"] == "failed"
    assert use["reason"] == (
        f"cache key file 'build/sparse' is {1 << 40} bytes, over the limit of {1 << 30} "
        "bytes (1GiB); narrow the files: pattern of the step's cache key"
    )
    first = _hostile_run(tmp_path, "1K")
    assert first.returncode == 0, first.stdout + first.stderr
    assert _jobs(first.stdout)["use"]["cached"] is False
    (tmp_path / "outside.txt").write_text("host file, second version")
    second = _hostile_run(tmp_path, "1K")
    assert _jobs(second.stdout)["use"]["cached"] is True  # the host file was not read
    assert _lines(tmp_path / "used.log") == ["used"]
