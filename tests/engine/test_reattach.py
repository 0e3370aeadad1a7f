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
from typing import Any

import pytest

from stockade.sandbox import spoolshim
from stockade.sandbox.registry import backend_class
from stockade.store import Store, open_store
from tests.engine.helpers import submit
from tests.engine.procs import STOCKADE, start_worker, stop
from tests.engine.test_fencing import workers
from tests.runner.helpers import alive

#: ``N`` lines, one every ``S`` seconds; its start and end noted in files
#: (where the sandbox lets it write there) and in its output; an output set
#: in ``$STOCKADE_OUTPUT`` (which the job's user, in a sandbox too, may write).
LINES = """D={d}
echo start >> "$D/starts" 2>/dev/null; echo start
echo written=yes >> "$STOCKADE_OUTPUT"
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


def _taken_over(d: Path) -> Callable[[], bool]:
    """Whether the restarted worker (logging to ``b.log``) adopted the job;
    waited for up to a minute: a loaded machine's start-up takes seconds."""
    return lambda: "reattached 1 job" in (d / "b.log").read_text()


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


@pytest.mark.parametrize(
    ("backend", "ends"),
    [("bwrap", "after"), ("chroot", "after"), ("chroot", "before")],
    ids=["bwrap", "chroot", "chroot-ends-before"],
)
def test_a_sandboxed_job_runs_on_through_its_workers_restart(
    tmp_path: Path, backend: str, ends: str, shim: str
) -> None:
    """A job of an isolating slot, its shim outside the sandbox: taken over
    still running (``after``), or found ended while no worker lived (``before``)."""
    usable = backend_class(backend).availability()
    if not usable.usable:
        pytest.skip(f"{backend} backend not usable here: {usable.reason} (fix: {usable.fix})")
    store_url = f"sqlite:///{tmp_path}/store.db"  # the store is the first test's business
    store = open_store(store_url)
    job = submit(store, LINES.format(d=tmp_path, n=8, s=0.5))  # about 4 s
    status = tmp_path / "data" / "spool" / "a" / f"{job}-1.status"
    with workers() as procs:
        args = ("--reattach", "--sandbox", backend)
        procs.append(_worker(store_url, tmp_path, "a.log", *args))
        _wait(lambda: "line 2" in _log_text(store, job), what="the job's first lines")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        if ends == "before":
            _wait(status.exists, what="the job's end while no worker lives")
        procs.append(_worker(store_url, tmp_path, "b.log", *args))
        _wait(lambda: store.queries.job(job).state.value == "succeeded", what="the job's end")
        assert stop(procs[1]) == 0
    assert [(a.attempt, a.outcome) for a in store.queries.attempts(job)] == [(1, "succeeded")]
    assert _log_text(store, job) == _lines(8)  # one start, one end: it ran once
    assert not status.exists()  # recorded: its spool is gone
    assert not (tmp_path / "starts").exists()  # it ran isolated: tmp_path is not there
    assert store.queries.outputs(job)["written"] == "yes"
    store.close()


#: Prints ``start`` (and, given ``tick``, a line every 0.2 s) until stopped; a
#: stop signal is answered on stdout and with exit code 3, a dump signal on stdout.
STOPPABLE = """trap 'echo "stopped by TERM"; exit 3' TERM
trap 'echo dumped' QUIT
echo start
while :; do {tick}sleep 0.1; done
"""


@pytest.mark.parametrize("limit", ["timeout", "idle_timeout"])
def test_an_adopted_job_is_stopped_at_its_limit_as_its_first_worker_would(
    store: Store, store_url: str, tmp_path: Path, limit: str
) -> None:
    # The limit counts from the attempt's start (timeout) or its last output
    # (idle): it passes after the takeover, not before the first worker's death.
    # The idle one has a dump signal first: it goes to the job, not the shim.
    tick = "echo tick; sleep 0.1; " if limit == "timeout" else ""
    task: dict[str, Any] = {limit: "10s", "kill_grace": "5s"}
    if limit == "idle_timeout":
        task["on_idle_timeout"] = {"dump": "SIGQUIT", "dump_wait": "1s"}
    job = submit(store, STOPPABLE.format(tick=tick), **task)
    with workers() as procs:
        procs.append(_worker(store_url, tmp_path, "a.log", "--reattach", "--lease", "20s"))
        _wait(lambda: "start" in _log_text(store, job), what="the job's start")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        procs.append(_worker(store_url, tmp_path, "b.log", "--reattach", "--lease", "20s"))
        _wait(_taken_over(tmp_path), 60, "the takeover")
        _wait(lambda: store.queries.job(job).state.value != "running", what="the stop")
        assert stop(procs[1]) == 0
    (attempt,) = store.queries.attempts(job)
    assert (attempt.outcome, attempt.reason) == ("timed_out", limit)
    # The stop signal, answered, not a SIGKILL: the same ladder as before the restart.
    assert (attempt.exit_code, attempt.signal) == (3, None)
    if limit == "timeout":
        assert _log_text(store, job).endswith("tick\nstopped by TERM\n")
    else:
        assert _log_text(store, job) == "start\ndumped\nstopped by TERM\n"
        assert attempt.result is not None
        assert attempt.result["dump"]["signal"] == "SIGQUIT"


#: Writes the ``file:`` output and ``$STOCKADE_OUTPUT`` while its first worker
#: lives, then waits for ``go`` (after the first worker's death) and spends
#: some CPU, which its recorded usage must show.
OUTPUTS = """echo '{{"from": "file"}}' > out.json
echo env=set >> "$STOCKADE_OUTPUT"
echo ready
while [ ! -e {d}/go ]; do sleep 0.05; done
i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done
"""


@pytest.mark.parametrize("where", ["workdir", "workspace"])
def test_an_adopted_jobs_outputs_artifacts_usage_and_workspace_are_those_of_any_end(
    store: Store, store_url: str, tmp_path: Path, where: str
) -> None:
    """In the task's workdir, taken over running; in a workspace of its own
    (named after the dead worker), ended while no worker lived: the restarted
    worker's start-up sweep must spare it, its end read it, then remove it."""
    place: dict[str, Any] = (
        {"workdir": str(tmp_path)} if where == "workdir" else {"workspace": "empty"}
    )
    job = submit(
        store, OUTPUTS.format(d=tmp_path), output_format="file", output_path="out.json",
        artifacts=["out.json"], **place,
    )  # fmt: skip
    status = tmp_path / "data" / "spool" / "a" / f"{job}-1.status"
    workspaces = tmp_path / "data" / "workspaces"
    with workers() as procs:
        procs.append(_worker(store_url, tmp_path, "a.log", "--reattach", "--lease", "20s"))
        _wait(lambda: "ready" in _log_text(store, job), what="the job's outputs written")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        if where == "workspace":
            (tmp_path / "go").touch()
            _wait(status.exists, what="the job's end while no worker lives")
            assert [p.name.split("-", 2)[-1] for p in workspaces.iterdir()] == [f"{job}.1"]
        procs.append(_worker(store_url, tmp_path, "b.log", "--reattach", "--lease", "20s"))
        _wait(_taken_over(tmp_path), 60, "the takeover")
        (tmp_path / "go").touch()
        _wait(lambda: store.queries.job(job).state.value == "succeeded", what="the job's end")
        assert stop(procs[1]) == 0
    assert [(a.attempt, a.outcome) for a in store.queries.attempts(job)] == [(1, "succeeded")]
    assert store.queries.outputs(job) == {"from": "file", "env": "set"}
    (attempt,) = store.queries.attempts(job)
    assert attempt.result is not None
    assert [a["name"] for a in attempt.result["artifacts"]] == ["out.json"]
    usage = attempt.result["usage"]  # from the shim's status line
    assert usage["cpu_user"] + usage["cpu_system"] > 0
    assert 0 < usage["wall"] == attempt.result["duration"]
    if where == "workspace":
        assert not list(workspaces.iterdir())  # removed (keep: never) once read
