"""A running job survives its worker's SIGKILL and restart (``--reattach``):
real worker processes, both stores.

The job counts its starts and ends in files and prints numbered lines; the
worker is SIGKILLed while it runs and restarted under the same name. The
job must have run once, be recorded once as attempt 1, and every line it
printed (those printed while no worker lived too) be in its log once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stockade.sandbox import spoolshim
from stockade.store import Store, open_store
from tests.engine.helpers import submit
from tests.engine.procs import STOCKADE, start_worker, stop
from tests.engine.test_fencing import workers
from tests.runner.helpers import alive

#: ``N`` lines, one every ``S`` seconds; its start and end noted in files
#: (where the sandbox lets it write there) and in its output.
LINES = """D={d}
echo start >> "$D/starts" 2>/dev/null; echo start
i=1
while [ $i -le {n} ]; do echo "line $i"; sleep {s}; i=$((i+1)); done
echo end >> "$D/ends" 2>/dev/null; echo end
"""


@pytest.fixture(params=["c", "python"])
def shim(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The spool shim the workers started by the test use (both implementations)."""
    if request.param == "c" and not os.access(spoolshim.NATIVE, os.X_OK):
        pytest.skip("the C shim is not built here (no C compiler at install)")
    monkeypatch.setenv("STOCKADE_NATIVE_SHIM", "1" if request.param == "c" else "0")
    return str(request.param)


def _wait(check: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _worker(url: str, d: Path, log: str, *args: str) -> subprocess.Popen[bytes]:
    if "--lease" not in args:
        args = ("--lease", "6s", *args)
    return start_worker(
        url, "--slots", "1", "--poll", "0.1", "--name", "a", "--data-dir", str(d / "data"),
        "--no-store-process", *args, log=d / log,
    )  # fmt: skip


def _log_text(store: Store, job: str, attempt: int = 1) -> str:
    chunks = store.queries.logs(job, attempt=attempt)
    return "".join(c.text for c in chunks if c.stream == "stdout")


def _lines(n: int) -> str:
    return "start\n" + "".join(f"line {i}\n" for i in range(1, n + 1)) + "end\n"


def test_a_job_that_ends_while_no_worker_lives_is_recorded_once_by_the_restarted_one(
    store: Store, store_url: str, tmp_path: Path, shim: str
) -> None:
    # A job that ends after the restart is the upgrade example's test, and the
    # other tests here run on SQLite: this one covers PostgreSQL (time budget).
    if store_url.startswith("sqlite"):
        pytest.skip("SQLite: the other tests of this module")
    n = 6
    job = submit(store, LINES.format(d=tmp_path, n=n, s=0.2))
    with workers() as procs:
        procs.append(_worker(store_url, tmp_path, "a.log", "--reattach"))
        # Killed once some output is recorded: it is recorded again, not twice.
        _wait(lambda: "line 2" in _log_text(store, job), what="the job's first lines")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        _wait((tmp_path / "ends").exists, what="the job's end while no worker lives")
        procs.append(_worker(store_url, tmp_path, "b.log", "--reattach"))
        _wait(lambda: store.queries.job(job).state.value == "succeeded", what="the job's end")
        assert stop(procs[1]) == 0
    assert (tmp_path / "starts").read_text() == "start\n"
    assert (tmp_path / "ends").read_text() == "end\n"
    assert [(a.attempt, a.outcome) for a in store.queries.attempts(job)] == [(1, "succeeded")]
    assert _log_text(store, job) == _lines(n)


def test_a_bwrap_job_runs_on_through_its_workers_restart(tmp_path: Path, shim: str) -> None:
    store_url = f"sqlite:///{tmp_path}/store.db"  # the store is the other test's business
    store = open_store(store_url)
    job = submit(store, LINES.format(d=tmp_path, n=20, s=0.2))  # ends after the restart
    with workers() as procs:
        args = ("--reattach", "--sandbox", "bwrap")
        procs.append(_worker(store_url, tmp_path, "a.log", *args))
        _wait(lambda: "line 2" in _log_text(store, job), what="the job's first lines")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        time.sleep(0.5)
        procs.append(_worker(store_url, tmp_path, "b.log", *args))
        _wait(lambda: store.queries.job(job).state.value == "succeeded", what="the job's end")
        assert stop(procs[1]) == 0
    assert [(a.attempt, a.outcome) for a in store.queries.attempts(job)] == [(1, "succeeded")]
    assert _log_text(store, job) == _lines(20)  # one start, one end: it ran once
    store.close()


#: Attempt 1 runs long and notes its pid; attempt 2 ends at once.
LONG_FIRST = """D={d}
echo start >> "$D/starts"
if [ "$STOCKADE_ATTEMPT" = 1 ]; then echo $$ > "$D/pid.1"; sleep 60; fi
echo end >> "$D/ends"
"""


def test_a_restart_after_the_lease_expired_records_the_attempt_lost_once(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/store.db"  # the stores' part is the first test's
    store = open_store(store_url)
    job = submit(
        store, LONG_FIRST.format(d=tmp_path), max_attempts=2, backoff={"initial": 0, "max": 0}
    )
    with workers() as procs:
        procs.append(_worker(store_url, tmp_path, "a.log", "--reattach", "--lease", "2s"))
        _wait((tmp_path / "pid.1").exists, what="attempt 1")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        pid = int((tmp_path / "pid.1").read_text())
        # No worker renews its lease: the fence kills it at its deadline.
        _wait(lambda: not alive(pid), what="the fence's kill at the deadline")
        procs.append(_worker(store_url, tmp_path, "b.log", "--reattach", "--lease", "2s"))
        _wait(lambda: store.queries.job(job).state.value == "succeeded", what="the retry")
        assert stop(procs[1]) == 0
    outcomes = [(a.attempt, a.outcome) for a in store.queries.attempts(job)]
    assert outcomes == [(1, "lost"), (2, "succeeded")]
    assert (tmp_path / "starts").read_text() == "start\nstart\n"
    assert (tmp_path / "ends").read_text() == "end\n"
    store.close()


def test_the_upgrade_example_keeps_its_job_through_the_restart(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "examples" / "reattach" / "upgrade.sh"
    env = dict(os.environ, STOCKADE=" ".join(STOCKADE), STOCKADE_DATA_DIR=str(tmp_path))
    env.pop("STOCKADE_DATABASE_URL", None)
    done = subprocess.run(
        ["sh", str(script)], env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 0, done.stderr + (tmp_path / "worker.log").read_text()
    ticks = "".join(f"tick {i}\n" for i in range(1, 21))
    assert done.stdout == ticks + "state     succeeded\nattempts  1/3\n"


def test_a_sigterm_drains_as_without_reattach_and_leaves_nothing_running(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/store.db"
    store = open_store(store_url)
    job = submit(store, LONG_FIRST.format(d=tmp_path))
    with workers() as procs:
        procs.append(_worker(store_url, tmp_path, "a.log", "--reattach", "--drain-timeout", "1s"))
        _wait((tmp_path / "pid.1").exists, what="attempt 1")
        assert stop(procs[0]) == 0
        pid = int((tmp_path / "pid.1").read_text())
        assert not alive(pid)  # stopped by the drain, not kept for a restart
    (attempt,) = store.queries.attempts(job)
    assert (attempt.outcome, attempt.reason) == ("cancelled", "worker_shutdown")
    assert store.queries.job(job).state.value == "queued"
    spool = tmp_path / "data" / "spool" / "a"
    _wait(lambda: not list(spool.iterdir()), what="the spool emptied, the fence gone")
    store.close()


def test_a_reattached_job_can_be_cancelled(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/store.db"
    store = open_store(store_url)
    job = submit(store, LONG_FIRST.format(d=tmp_path))
    with workers() as procs:
        procs.append(_worker(store_url, tmp_path, "a.log", "--reattach"))
        _wait((tmp_path / "pid.1").exists, what="attempt 1")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        procs.append(_worker(store_url, tmp_path, "b.log", "--reattach"))
        _wait(lambda: "reattached 1 job" in (tmp_path / "b.log").read_text(), what="the takeover")
        store.jobs.cancel([job])
        _wait(lambda: store.queries.job(job).state.value == "cancelled", what="the cancel")
        assert not alive(int((tmp_path / "pid.1").read_text()))
        assert stop(procs[1]) == 0
    assert [(a.attempt, a.outcome) for a in store.queries.attempts(job)] == [(1, "cancelled")]
    store.close()
