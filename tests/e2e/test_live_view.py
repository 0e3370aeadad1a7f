"""The live view of ``stockade run``, as drawn on a real pseudo-terminal.

The CLI runs as a real process with a pty as its terminal (``pty.openpty``;
the window size set on it as a terminal emulator would), and the test reads
everything it draws: the header, a progress bar per step moving as jobs
finish, the failure section with the failed job's log tail, and the final
summary table; cursor control while live, and none of it without a terminal.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path

import pytest

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")
"""Escape sequences: CSI (colour, cursor moves, erase), OSC, and two-byte ones."""

PIPELINE = """
pipelines:
  demo:
    concurrency: 2
    steps:
      build:
        for_each: [alpha, beta, gamma, delta]
        run: 'echo "building ${{ item }}"; sleep 0.7'
      lint:
        needs: [build]
        run: >-
          for i in 1 2 3 4 5 6; do echo "lint line $i"; done;
          echo "lint: 2 problems" >&2; sleep 0.5; exit 3
"""


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "stockade.yaml").write_text(textwrap.dedent(PIPELINE))
    return tmp_path


def _run_on_pty(cwd: Path, columns: int = 100, rows: int = 40) -> tuple[int, str]:
    """Run ``stockade run`` with a new pty as stdin, stdout and stderr; return its
    exit status and every byte it drew, decoded."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CI", "COLUMNS", "LINES")}
    env |= {"TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [*STOCKADE, "run"], cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env,
        start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    drawn = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its side
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(master)
    return proc.wait(timeout=30), drawn.decode("utf-8", "replace")


def _plain(text: str) -> str:
    return ANSI.sub("", text).replace("\r\n", "\n")


def test_live_view_draws_header_bars_failures_and_summary(workspace: Path) -> None:
    status, drawn = _run_on_pty(workspace)
    assert status == 1, drawn
    text = _plain(drawn)

    # cursor control while live: hidden cursor, lines erased and redrawn, shown again
    assert "\x1b[?25l" in drawn and "\x1b[?25h" in drawn
    assert "\x1b[2K" in drawn and "\x1b[1A" in drawn
    assert "\x1b[" in drawn.split("\x1b[?25l", 1)[1]  # colour as well

    # the header, with the counts moving and the failure counted
    headers = re.findall(r"pipeline demo\s+(\d+)/(\d+) jobs(\s+1 failed)?", text)
    assert headers, text
    seen = {(int(d), int(total)) for d, total, _ in headers}
    assert (0, 4) in seen and (5, 5) in seen, seen  # lint's job is known once it expands
    assert seen & {(1, 4), (2, 4), (3, 4)}, seen
    assert any(failed for _, _, failed in headers)

    # a bar per step, width 30, with done/total beside it, seen part way
    bars = re.findall(r"(build|lint)\s+([━╸╺]{30})\s+(\d)/(\d)", text)
    build = {int(n) for step, _, n, total in bars if step == "build" and total == "4"}
    assert {0, 4} <= build and build & {1, 2, 3}, bars
    assert ("lint", "1", "1") in {(step, n, total) for step, _, n, total in bars}
    assert re.search(r"lint\s+━{30}\s+waiting\s+wait", text)  # before its needs are done
    assert re.search(r"build\[(alpha|beta|gamma|delta)\]\s+\d+\.\ds\s+building", text)

    # the failure: reason, log and the tail of its output, then the summary
    final = text[text.rindex("✗ lint: exit code 3") :]
    assert "log: " in final
    tail = re.findall(r"│ (lint line \d|lint: 2 problems)", final)
    assert tail[:7] == [f"lint line {i}" for i in range(1, 7)] + ["lint: 2 problems"]
    assert "demo: failed in" in final
    summary = re.search(r"┃ step\s+┃ status\s+┃ jobs ┃ ok ┃ failed ┃ skipped ┃ time ┃", final)
    assert summary, final
    assert re.search(r"│ build\s+│ succeeded\s+│\s+4 │\s+4 │\s+0 │\s+0 │", final)
    assert re.search(r"│ lint\s+│ failed\s+│\s+1 │\s+0 │\s+1 │\s+0 │", final)
    # the live frame was taken away (transient): the summary is the last thing drawn
    assert text.rstrip().endswith("┘")


def test_no_cursor_control_without_a_terminal(workspace: Path) -> None:
    done = subprocess.run(
        [*STOCKADE, "run"], cwd=workspace, capture_output=True, text=True, timeout=60,
        env={**os.environ, "TERM": "xterm-256color"}, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "\x1b" not in done.stdout and "\x1b" not in done.stderr
    assert "failed    lint" in done.stdout  # the plain log instead
    assert "│ lint line 6" in done.stdout
    assert "demo: failed in" in done.stdout


def test_live_view_shows_a_running_jobs_progress(tmp_path: Path) -> None:
    (tmp_path / "stockade.yaml").write_text(
        "pipelines:\n  up:\n    steps:\n      upload:\n        run: >-\n"
        "          echo '  ::progress value=40::uploading part 2 of 5'; echo sent; sleep 1.2\n"
    )
    status, drawn = _run_on_pty(tmp_path)
    assert status == 0, drawn
    assert re.search(r"upload\s+\d+\.\ds\s+\[ 40%\] uploading part 2 of 5\s+sent", _plain(drawn))
