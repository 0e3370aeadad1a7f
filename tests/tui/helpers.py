"""A small project with a real pipeline, run by the real CLI, for the TUI's
and the timeline's tests."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
HOSTILE = "\x1b]0;owned\x07<b>[red]markup[/red]</b>"

EVENTS = [
    {"Action": "run", "Package": "m/p", "Test": "TestOK"},
    {"Action": "pass", "Package": "m/p", "Test": "TestOK", "Elapsed": 0.1},
    {"Action": "output", "Package": "m/p", "Test": "TestBad", "Output": "bad_test.go:9: want 3\n"},
    {"Action": "output", "Package": "m/p", "Test": "TestBad", "Output": HOSTILE + "\n"},
    {"Action": "fail", "Package": "m/p", "Test": "TestBad", "Elapsed": 0.2},
]

PIPELINES = """
version: 1
pipelines:
  ci:
    steps:
      build:
        for_each: [a, b, c]
        run: 'echo "building ${{ item }}"; sleep 0.3; echo "built ${{ item }}"'
      test:
        needs: [build]
        events: test2json
        run: 'echo compiling; cat events.jsonl; exit 1'
      publish:
        needs: [test]
        run: echo published
  slow:
    steps:
      tick:
        run: 'i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo "tick $i"; sleep 0.1; done'
"""


def project(root: Path) -> Path:
    """``root`` with the ``stockade.yaml`` above and the test events file."""
    (root / "stockade.yaml").write_text(textwrap.dedent(PIPELINES))
    (root / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return root


def stockade(root: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STOCKADE, *args, "--database-url", url], cwd=root, capture_output=True, text=True,
        timeout=90, check=False,
    )  # fmt: skip


def run_ci(root: Path, url: str) -> str:
    """Run the ``ci`` pipeline (it fails: TestBad); its run id."""
    done = stockade(root, url, "run", "ci", "--plain")
    assert done.returncode == 1, done.stdout + done.stderr
    runs = stockade(root, url, "runs", "--json")
    return str(json.loads(runs.stdout.splitlines()[0])["id"])


def wait_until(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll ``check`` until it is true (a generous bound: the machine is shared)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
