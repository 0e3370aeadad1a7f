"""A running job survives its worker's SIGKILL and restart (``--reattach``):
real worker processes, both stores.

The job counts its starts and ends in files and prints numbered lines; the
worker is SIGKILLed while it runs and restarted under the same name. The
job must have run once, be recorded once as attempt 1, and every line it
printed (those printed while no worker lived too) be in its log once.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stockade.store import Store
from tests.engine.helpers import submit
from tests.engine.procs import start_worker, stop
from tests.engine.test_fencing import workers

#: ``N`` lines, one every ``S`` seconds; its start and end noted in files.
LINES = """D={d}
echo start >> "$D/starts"
i=1
while [ $i -le {n} ]; do echo "line $i"; sleep {s}; i=$((i+1)); done
echo end >> "$D/ends"
"""


def _wait(check: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _worker(url: str, d: Path, log: str, *args: str) -> object:
    return start_worker(
        url, "--slots", "1", "--poll", "0.1", "--lease", "6s", "--name", "a",
        "--data-dir", str(d / "data"), *args, log=d / log,
    )  # fmt: skip


def _log_text(store: Store, job: str) -> str:
    return "".join(c.text for c in store.queries.logs(job) if c.stream == "stdout")


@pytest.mark.parametrize("ends", ["after", "while-dead"])
def test_a_job_runs_on_through_its_workers_restart_and_is_recorded_once(
    store: Store, store_url: str, tmp_path: Path, ends: str
) -> None:
    # "after": the job ends after the restart; "while-dead": while no worker lives.
    n, pause = (15, 0.2) if ends == "after" else (6, 0.2)
    job = submit(store, LINES.format(d=tmp_path, n=n, s=pause))
    with workers() as procs:
        procs.append(_worker(store_url, tmp_path, "a.log", "--reattach"))  # type: ignore[arg-type]
        _wait((tmp_path / "starts").exists, what="the job's start")
        time.sleep(0.5)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        if ends == "while-dead":
            _wait((tmp_path / "ends").exists, what="the job's end while no worker lives")
        else:
            time.sleep(0.5)
            assert not (tmp_path / "ends").exists()
        procs.append(_worker(store_url, tmp_path, "b.log", "--reattach"))  # type: ignore[arg-type]
        _wait(lambda: store.queries.job(job).state.value == "succeeded", what="the job's end")
        assert stop(procs[1]) == 0
    assert (tmp_path / "starts").read_text() == "start\n"
    assert (tmp_path / "ends").read_text() == "end\n"
    assert [(a.attempt, a.outcome) for a in store.queries.attempts(job)] == [(1, "succeeded")]
    assert _log_text(store, job) == "".join(f"line {i}\n" for i in range(1, n + 1))
