"""Nothing a job started outlives its worker: real worker processes, both stores.

Each job writes timestamps and pids to files, so a test sees whether an
attempt still ran when the next one started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from stockade.engine.worker import Worker
from stockade.store import Store, open_store
from tests.engine.helpers import state, submit, until, with_worker
from tests.engine.procs import kill_leftovers, start_worker, stop
from tests.runner.helpers import alive
from tests.store import pg

#: Attempt 1 records its shell's and its sleep's pids and stays quiet (it
#: ignores SIGPIPE too: nothing it writes can stop it); a later attempt
#: records whether any of them was still running when it started.
QUIET = """trap '' PIPE
D={d}
if [ "$STOCKADE_ATTEMPT" = 1 ]; then
  sleep 60 & echo "$$ $!" > "$D/pids.1"
  wait
fi
for p in $(cat "$D/pids.1"); do
  if [ -e /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status; then echo "$p" >> "$D/overlap"; fi
done
date +%s.%N > "$D/.start" && mv "$D/.start" "$D/start.$STOCKADE_ATTEMPT"
"""

#: Attempt 1 ticks into a file every 50 ms until it is killed; a later
#: attempt notes when it started (renamed into place: a test that sees the
#: file reads a whole time, never an empty one).
TICKING = """D={d}
if [ "$STOCKADE_ATTEMPT" = 1 ]; then
  echo $$ > "$D/pids.1"
  while :; do date +%s.%N >> "$D/ticks.1"; sleep 0.05; done
fi
date +%s.%N > "$D/.start" && mv "$D/.start" "$D/start.$STOCKADE_ATTEMPT"
"""


@contextlib.contextmanager
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes a test starts; killed, with what they left, at its end."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
            kill_leftovers(proc.pid)


def _wait(check: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _pids(d: Path) -> list[int]:
    return [int(p) for p in (d / "pids.1").read_text().split()]


def _worker(url: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    return start_worker(url, "--slots", "1", "--poll", "0.1", *args, log=log)


@pytest.mark.parametrize("same_name", [True, False], ids=["same-name", "other-name"])
def test_a_sigkilled_workers_quiet_job_is_dead_before_its_retry_starts(
    store: Store, store_url: str, tmp_path: Path, same_name: bool
) -> None:
    job = submit(store, QUIET.format(d=tmp_path), max_attempts=2, backoff={"initial": 0, "max": 0})
    with workers() as procs:
        procs.append(_worker(store_url, tmp_path / "a.log", "--name", "a", "--lease", "2s"))
        _wait((tmp_path / "pids.1").exists, what="attempt 1")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        name = "a" if same_name else "b"  # "a": recovered at once; "b": after the lease
        procs.append(_worker(store_url, tmp_path / "b.log", "--name", name, "--lease", "2s"))
        _wait((tmp_path / "start.2").exists, what="attempt 2")
        assert not (tmp_path / "overlap").exists(), "attempt 1 still ran when attempt 2 started"
        assert not any(alive(p) for p in _pids(tmp_path))
        _wait(lambda: store.queries.job(job).state.value == "succeeded", what="the job's end")
    outcomes = [a.outcome for a in store.queries.attempts(job)]
    assert outcomes == ["lost", "succeeded"]


def _fence_of(pid: int) -> int:
    """The pid of worker ``pid``'s fence process."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        for child in Path(f"/proc/{pid}/task/{tid}/children").read_text().split():
            if Path(f"/proc/{child}/comm").read_text().strip() == "stockade-fence":
                return int(child)
    raise AssertionError(f"worker {pid} has no fence")


def test_jobs_whose_worker_and_fence_both_died_are_killed_before_recovery(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    job = submit(store, QUIET.format(d=tmp_path), max_attempts=2, backoff={"initial": 0, "max": 0})
    with workers() as procs:
        procs.append(_worker(store_url, tmp_path / "a.log", "--name", "a"))
        _wait((tmp_path / "pids.1").exists, what="attempt 1")
        fence = _fence_of(procs[0].pid)
        os.kill(fence, signal.SIGKILL)  # as the OOM killer might
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        assert any(alive(p) for p in _pids(tmp_path))  # nobody killed the job yet
        # The restarted worker sweeps the dead worker's slot cgroups first.
        procs.append(_worker(store_url, tmp_path / "b.log", "--name", "a"))
        _wait((tmp_path / "start.2").exists, what="attempt 2")
        assert not (tmp_path / "overlap").exists(), "attempt 1 still ran when attempt 2 started"
        _wait(lambda: store.queries.job(job).state.value == "succeeded", what="the job's end")
        with contextlib.suppress(ChildProcessError):
            os.waitpid(fence, 0)  # re-parented to this test process (a subreaper)


def test_a_job_recorded_lost_has_no_process_left(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    job = submit(store, QUIET.format(d=tmp_path), max_attempts=1)
    with workers() as procs:
        procs.append(_worker(store_url, tmp_path / "a.log", "--name", "a"))
        _wait((tmp_path / "pids.1").exists, what="attempt 1")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        procs.append(_worker(store_url, tmp_path / "b.log", "--name", "a"))
        _wait(lambda: store.queries.job(job).state.value == "failed", what="the job lost")
        left = [p for p in _pids(tmp_path) if alive(p)]
        assert not left, f"job processes {left} still run after the job was recorded lost"
    assert [a.outcome for a in store.queries.attempts(job)] == ["lost"]


def test_a_paused_worker_kills_its_job_before_the_lease_expires(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    job = submit(
        store, TICKING.format(d=tmp_path), max_attempts=2, backoff={"initial": 0, "max": 0}
    )
    with workers() as procs:
        paused = _worker(store_url, tmp_path / "a.log", "--name", "a", "--lease", "3s")
        procs.append(paused)
        _wait((tmp_path / "ticks.1").exists, what="attempt 1")
        # Paused just after a renewal has landed, not in the middle of one: a
        # process stopped inside a write transaction holds SQLite's write lock
        # (and PostgreSQL's row locks) until it runs again, and nobody could
        # recover its job meanwhile (docs/worker.md says so).
        leased = store.queries.job(job).lease_expires
        _wait(lambda: store.queries.job(job).lease_expires != leased, what="a renewal")
        paused.send_signal(signal.SIGSTOP)  # its fence, a process of its own, runs on
        procs.append(_worker(store_url, tmp_path / "b.log", "--name", "b", "--lease", "3s"))
        _wait((tmp_path / "start.2").exists, what="attempt 2")
        assert not alive(_pids(tmp_path)[0])
        last_tick = float((tmp_path / "ticks.1").read_text().split()[-1])
        started = float((tmp_path / "start.2").read_text())
        assert last_tick < started, "attempt 1 still ran when attempt 2 started"
        _wait(lambda: store.queries.job(job).state.value == "succeeded", what="the job's end")
        paused.send_signal(signal.SIGCONT)
        assert stop(paused) == 0
    outcomes = [a.outcome for a in store.queries.attempts(job)]
    assert outcomes == ["lost", "succeeded"]
    (row,) = [w for w in store.queries.workers() if w.id == "a"]
    assert row.counters["fenced"] == 1  # it learnt its job was killed, and recorded nothing


def test_a_worker_cut_off_from_its_database_kills_its_job_before_the_lease_expires(
    tmp_path: Path,
) -> None:
    with pg.throwaway() as cluster:
        store = open_store(cluster.url)
        job = submit(
            store, TICKING.format(d=tmp_path), max_attempts=2, backoff={"initial": 0, "max": 0}
        )
        store.close()
        with workers() as procs:
            procs.append(_worker(cluster.url, tmp_path / "w.log", "--name", "a", "--lease", "3s"))
            _wait((tmp_path / "ticks.1").exists, what="attempt 1")
            down = time.time()
            cluster.stop()  # every connection closed, no new one accepted
            # The last renewal was before the stop: the lease can expire 3 s
            # after it at the earliest, and the job must be dead by then.
            _wait(lambda: not alive(_pids(tmp_path)[0]), timeout=10, what="the fence's kill")
            last_tick = float((tmp_path / "ticks.1").read_text().split()[-1])
            assert last_tick < down + 3.0
            cluster.start()
            _wait((tmp_path / "start.2").exists, what="attempt 2, after recovery")
            assert last_tick < float((tmp_path / "start.2").read_text())
        store = open_store(cluster.url)
        assert store.queries.attempts(job)[0].outcome == "lost"
        store.close()


def test_renewals_keep_a_long_job_alive_whatever_the_poll_interval(
    store: Store, store_url: str
) -> None:
    # Renewals every lease/3 even when the housekeeping loop's poll is longer
    # than the lease: otherwise the fence's deadlines pass and kill the job.
    job = submit(store, "sleep 2.5")

    async def body(worker: Worker) -> None:
        await until(lambda: state(store, job) == "succeeded", timeout=20)

    worker = with_worker(store_url, body, lease=1.2, poll=5.0)
    assert worker.counters.fenced == 0 and worker.counters.succeeded == 1


def test_the_margin_leaves_renewals_time_and_covers_drift() -> None:
    from stockade.engine.fencing import margin

    assert margin(30.0) == 3.0
    assert margin(12.0) == 2.0
    assert margin(3.0) == pytest.approx(0.5)  # a short lease: its renewals still get time
    for lease in (0.6, 1.5, 3.0, 10.0, 12.0, 30.0, 300.0):
        assert lease - margin(lease) - lease / 3 >= lease / 2 - 1e-9  # a renewal's time


def test_deadlines_follow_the_sends_that_set_the_leases() -> None:
    from stockade.engine.fencing import LeaseFence

    fence = LeaseFence(None, lease=30.0)  # no fence process: the bookkeeping alone
    now = time.monotonic()
    fence.held(["a", "b"], now - 28.0)  # claimed 28 s ago, never renewed
    assert fence.passed("a") and fence.passed("b")
    fence.held(["a"], now)  # renewed just now
    assert not fence.passed("a") and fence.passed("b")
    fence.ended("b")
    assert not fence.passed("b")  # a job no longer held is never taken for fenced


def test_a_job_claimed_again_before_the_clear_keeps_its_new_deadline() -> None:
    from stockade.engine.fencing import LeaseFence
    from stockade.sandbox.fence import Fence, Guard

    read, write = os.pipe()
    fence = LeaseFence(Fence(0, write), lease=30.0)  # our pipe stands in for the fence's
    fence.held(["j"], 100.0)
    fence.ended("j")  # attempt 1 ended; its clear waits for the next renewal
    fence.held(["j"], 200.0)  # attempt 2 claimed by the same worker
    fence.flush()
    os.close(write)
    guard = Guard()
    for line in os.read(read, 65536).decode().splitlines():
        guard.apply(line)
    os.close(read)
    assert guard.next_deadline() == 200.0 + 30.0 - 3.0


def test_a_chore_stuck_on_a_lock_does_not_hold_up_lease_renewal(pg_url: str) -> None:
    """Housekeeping's tasks run on their own: the schedules table locked by
    someone else stalls the chores' pass, never the renewals the fence counts
    on (PostgreSQL: SQLite's one writer lock would stall every write alike)."""
    store = open_store(pg_url)
    job = submit(store, "sleep 2.5")
    blocker = open_store(pg_url)

    async def body(worker: Worker) -> None:
        await until(lambda: state(store, job) == "running", timeout=20)
        with blocker.db.transaction() as conn:
            conn.execute(sa.text("LOCK TABLE schedules IN ACCESS EXCLUSIVE MODE"))
            await until(lambda: state(store, job) == "succeeded", timeout=20)

    try:
        worker = with_worker(pg_url, body, lease=1.2)
    finally:
        blocker.close()
    assert worker.counters.fenced == 0 and worker.counters.succeeded == 1
    assert [a.outcome for a in store.queries.attempts(job)] == ["succeeded"]
    store.close()
