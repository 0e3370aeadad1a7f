"""A worker keeps a bounded head and tail of each attempt's log in the store,
and says what it cut, in the store, in `stockade logs` and in the API."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from stockade.store import Store
from tests.engine.helpers import submit
from tests.engine.procs import kill_leftovers, start_worker
from tests.server.helpers import Server, sse_events

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]
HEAD = TAIL = 64 * 1024
LINES = 4_000_000  # seq 1 LINES: about 31 MB
#: Room for stockade's two notes (the head is full; what was cut).
MARKER_ROOM = 1024


def test_a_big_log_keeps_head_tail_and_a_marker(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    job = submit(
        store,
        f"echo first-err >&2; sleep 0.5; seq 1 {LINES}; sleep 0.5; echo last-err >&2",
        log_head="64KiB",
        log_tail="64KiB",
    )
    full = tmp_path / "full"
    worker = start_worker(
        store_url, "--slots", "1", "--burst", "-q", "--full-logs", str(full), log=tmp_path / "w.log"
    )
    try:
        assert worker.wait(120) == 0, (tmp_path / "w.log").read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        kill_leftovers(worker.pid)
    assert store.queries.job(job).state.value == "succeeded"

    chunks = store.queries.logs(job, limit=100_000)
    assert sum(len(c.text.encode()) for c in chunks) <= HEAD + TAIL + MARKER_ROOM
    out = "".join(c.text for c in chunks if c.stream == "stdout")
    err = "".join(c.text for c in chunks if c.stream == "stderr")
    notes = "".join(c.text for c in chunks if c.stream == "stockade")
    assert out.startswith("1\n2\n3\n") and out.endswith(f"{LINES - 1}\n{LINES}\n")
    assert err == "first-err\nlast-err\n"
    assert "reached log_head (64KiB)" in notes
    cut = re.search(r"log cut here: stdout (\d+) bytes \((\d+) lines\) not kept", notes)
    assert cut is not None, notes
    written = sum(len(str(n)) + 1 for n in range(1, LINES + 1))
    assert int(cut[1]) + len(out) == written
    assert int(cut[2]) + out.count("\n") == LINES
    # All of it is in the worker's --full-logs files, and the marker says where.
    assert f"all of it: {socket.gethostname()}:{full}/{job}.1.{{stdout,stderr}}" in notes
    assert (full / f"{job}.1.stdout").stat().st_size == written
    assert (full / f"{job}.1.stderr").read_text() == "first-err\nlast-err\n"
    # The marker sits where the cut is: after the head, before the tail.
    streams = [c.stream for c in chunks]
    last_marker = len(streams) - 1 - streams[::-1].index("stockade")
    assert "stdout" in streams[:last_marker] and "stdout" in streams[last_marker:]

    shown = subprocess.run(
        [*STOCKADE, "logs", job], env={**os.environ, "STOCKADE_DATABASE_URL": store_url},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == out
    assert "log cut here: stdout" in shown.stderr and "first-err" in shown.stderr

    server = Server(tmp_path / "serve", slots=0, database_url=store_url)
    try:
        whole = server.client.get(f"/api/v1/jobs/{job}/logs").text
        assert "log cut here: stdout" in whole and whole.endswith("last-err\n")
        with server.client.stream("GET", f"/api/v1/jobs/{job}/logs/stream") as resp:
            events = sse_events("".join(resp.iter_text()))
        logged = [json.loads(e["data"]) for e in events if e["event"] == "log"]
        assert any(e["stream"] == "stockade" and "log cut here" in e["text"] for e in logged)
    finally:
        assert server.stop() == 0


def test_full_logs_must_be_a_usable_directory(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    proc = subprocess.run(
        [*STOCKADE, "worker", "--burst", "--full-logs", str(afile / "logs")],
        env={**os.environ, "STOCKADE_DATA_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"stockade: error: --full-logs: cannot use {str(afile / 'logs')!r}: Not a directory"
    ]
