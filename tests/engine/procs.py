"""Worker processes for the end-to-end tests: start, signal, wait, clean up."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from stockade.sandbox.cgroup import cgroup2_root

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


def start_worker(url: str, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """``stockade worker`` as a child process, logging to ``log``."""
    env = dict(os.environ, STOCKADE_DATABASE_URL=url)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*STOCKADE, "worker", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def kill_leftovers(pid: int) -> None:
    """Kill what a SIGKILLed worker's jobs left running and remove its slot cgroups."""
    root = cgroup2_root()
    base = root / "stockade" if root is not None else None
    if base is None or not base.exists():
        return
    for slot in base.glob(f"{pid}-*"):
        try:
            (slot / "cgroup.kill").write_text("1")
        except OSError:
            continue
        deadline = time.monotonic() + 5
        while _procs(slot) and time.monotonic() < deadline:
            time.sleep(0.01)
        with contextlib.suppress(OSError):
            slot.rmdir()


def _procs(slot: Path) -> str:
    """The pids in a slot cgroup; empty once it is gone (any stockade process
    starting up prunes the empty cgroups of dead owners, so it may vanish)."""
    try:
        return (slot / "cgroup.procs").read_text().strip()
    except OSError:  # gone (ENOENT), or removed between the open and the read (ENODEV)
        return ""


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM a worker and wait for it; SIGKILL it if it does not stop."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
