"""``stockade serve`` on a busy port: one line, exit 1, nothing started."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.server.helpers import ENV_TOKEN


def test_serve_on_a_busy_port_fails_first_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "stockade.cli.main", "serve", "--port", str(port),
             "--data-dir", str(tmp_path / "data")],
            env={**os.environ, "STOCKADE_TOKEN": ENV_TOKEN},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"stockade: error: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "stop what uses it or give another --port"
    ]
    assert not (tmp_path / "data").exists(), "the store was opened"
