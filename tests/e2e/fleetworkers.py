"""Two ``stockade worker`` processes on one store, for the ``--fleet`` tests."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.engine.procs import start_worker, stop


@contextlib.contextmanager
def two_workers(url: str, logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two workers of two slots each on ``url`` (its schema made already),
    logging to ``logs``/w0.log and w1.log; stopped on the way out."""
    procs = [
        start_worker(url, "--slots", "2", "--poll", "0.1", log=logs / f"w{i}.log") for i in range(2)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            stop(proc)
