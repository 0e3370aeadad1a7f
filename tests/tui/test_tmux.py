"""End to end in a real terminal: tmux drives ``stockade run --tui`` and then
``stockade tui`` on that real run (keys sent, the screen read back)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from stockade.store import open_store
from tests.tui.helpers import project, wait_until

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(
    TMUX is None, reason="no tmux (apt-get install tmux; `make test` does)"
)


class Terminal:
    """A tmux server of its own (its own socket) running one command."""

    def __init__(self, command: str, cwd: Path) -> None:
        self.socket = f"stockade-tui-{uuid.uuid4().hex[:8]}"
        env = {**os.environ, "TERM": "xterm-256color"}
        self._tmux("new-session", "-d", "-s", "t", "-x", "100", "-y", "30", "-c", str(cwd),
                   command, env=env)  # fmt: skip

    def _tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        assert TMUX is not None
        done = subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True, text=True,
                              timeout=30, check=False, env=env)  # fmt: skip
        return done.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def wait_for(self, text: str) -> str:
        wait_until(lambda: text in self.screen(), f"{text!r} on the screen:\n{self.screen()}")
        return self.screen()

    def close(self) -> None:
        self._tmux("kill-server")


def test_run_tui_then_tui_on_that_run(tmp_path: Path) -> None:
    root = project(tmp_path)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    cli = f"{sys.executable} -m stockade.cli.main"
    status = tmp_path / "status"
    term = Terminal(f"{cli} run ci --tui --database-url {url}; echo $? > {status}; sleep 60", root)
    try:
        term.wait_for("1 failed, 1 passed")  # the run, live, to its end
        term.wait_for("compiling")  # the failed job's log
        term.wait_for("✓ build")
        term.keys("q")
        wait_until(status.exists, "stockade run --tui to exit")
        assert status.read_text().strip() == "1"  # the pipeline's status
    finally:
        term.close()

    store = open_store(url)
    try:
        run_id = store.runs.latest().id
        status.unlink()
        command = f"{cli} tui {run_id[:10]} --database-url {url}; echo $? > {status}; sleep 60"
        term = Terminal(command, root)
        try:
            term.wait_for(run_id)
            term.wait_for("build[a]")
            term.wait_for("✗ test")
            term.keys("f")
            screen = term.wait_for("filter: failed")
            assert "build[a]" not in screen
            term.keys("R")  # rerun the failed: a new run, and the TUI follows it
            wait_until(lambda: store.runs.latest().source_run == run_id, "the rerun")
            rerun = store.runs.latest()
            term.wait_for(rerun.id)
            wait_until(lambda: store.runs.run(rerun.id).state.value == "failed", "the rerun's end")
            term.keys("q")
            wait_until(status.exists, "stockade tui to exit")
            assert status.read_text().strip() == "0"
        finally:
            term.close()
    finally:
        store.close()


def test_quitting_run_tui_leaves_the_run_going_and_ctrl_c_cancels_it(tmp_path: Path) -> None:
    root = project(tmp_path)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    status = tmp_path / "status"
    cli = f"{sys.executable} -m stockade.cli.main"
    term = Terminal(
        f"{cli} run slow --tui --database-url {url}; echo $? > {status}; sleep 60", root
    )
    try:
        term.wait_for("tick 3")  # the live log
        term.keys("q")
        term.wait_for("goes on")
        store = open_store(url)
        try:
            assert store.runs.latest().state.value == "running"
            term.keys("C-c")
            wait_until(status.exists, "stockade run --tui to exit")
            assert status.read_text().strip() == "130"
            assert store.runs.latest().state.value == "cancelled"
        finally:
            store.close()
    finally:
        term.close()
