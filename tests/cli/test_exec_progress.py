"""What ``stockade exec`` shows of ``::group::`` and ``::progress``: group
titles on stderr, progress as a status line on a terminal only (a real CLI
subprocess on a real pseudo-terminal)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time

from tests.terminal import read_pty

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
JOB = (
    "echo '::group::Compile'; echo inside; echo '::endgroup::'; "
    "echo '::progress value=40::uploading part 2 of 5'; sleep 0.3; "
    "printf 'prompt> '; sleep 0.3; echo answered; "
    "echo '  ::PROGRESS VALUE=90::almost'; sleep 0.3; echo done"
)


def test_progress_is_a_status_line_on_a_terminal() -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*STOCKADE, "exec", "--shell", JOB], stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    try:
        seen = read_pty(master, time.monotonic() + 30)
    finally:
        os.close(master)
    assert proc.wait(timeout=30) == 0
    text = seen.decode().replace("\r\n", "\n")
    erase = "\r\x1b[K"
    assert "stockade: group: Compile\ninside\n" in text
    assert f"{erase}stockade: [ 40%] uploading part 2 of 5{erase}prompt> answered\n" in text
    assert f"stockade: [ 90%] almost{erase}done\n" in text
    assert text.endswith(f"done\nstockade: [ 90%] almost{erase}")  # gone when the job ends


def test_progress_stays_off_pipes() -> None:
    done = subprocess.run(
        [*STOCKADE, "exec", "--shell", JOB], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert done.stdout == "inside\nprompt> answered\ndone\n"
    assert done.stderr == "stockade: group: Compile\n"
