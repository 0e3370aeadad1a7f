"""Garbage collection around ``stockade exec``'s start-up
(:mod:`stockade.cli.startup`): a process of its own loads with the collector
off, then freezes what it loaded and collects again for the run; a program
calling the CLI in-process keeps its collector as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: Runs the CLI (``argv`` None: as the entry point does, or with the list
#: given), then reports the collector's state.
PROBE = """
import gc, sys
from stockade.cli.main import main
argv = None if sys.argv[1] == "own" else sys.argv[2:]
sys.argv = ["stockade", *sys.argv[2:]]
status = main(argv)
print(gc.isenabled(), gc.get_freeze_count() > 0, status)
"""


def _probe(mode: str, args: list[str], tmp_path: Path) -> str:
    env = {**os.environ, "STOCKADE_DATA_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def test_own_process_freezes_what_it_loaded_and_collects_again(tmp_path: Path) -> None:
    assert _probe("own", ["exec", "--", "true"], tmp_path) == "True True 0"


def test_in_process_call_leaves_the_collector_alone(tmp_path: Path) -> None:
    assert _probe("call", ["exec", "--", "true"], tmp_path) == "True False 0"


def test_a_failing_job_reports_its_status_as_before(tmp_path: Path) -> None:
    assert _probe("own", ["exec", "--", "false"], tmp_path) == "True True 1"
