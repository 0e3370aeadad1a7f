"""Timeouts, idle timeouts, cancellation and guaranteed kill, on real trees."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from stockade.runner.attempt import run
from stockade.runner.cancel import Stop
from stockade.runner.events import ListSink
from stockade.runner.result import Outcome
from stockade.runner.spec import RunSpec
from stockade.sandbox.local import LocalSandbox
from tests.runner.helpers import alive, run_spec, sh, zombie_children

# A tree that resists: a child ignoring TERM, a setsid child, a double-forked
# daemon that ignores TERM too. Each writes its pid to the pid file.
HOSTILE_TREE = r"""
pids="$1"
( trap '' TERM; echo $BASHPID >> "$pids"; exec sleep 300 ) &
setsid sh -c 'echo $$ >> "$0"; exec sleep 300' "$pids" &
( ( trap '' TERM; echo $BASHPID >> "$pids"; exec setsid sleep 300 ) & ) &
trap '' TERM
echo $$ >> "$pids"
echo ready
sleep 300
"""


def _tree_spec(tmp_path: Path, **kw: object) -> tuple[RunSpec, Path]:
    pids = tmp_path / "pids"
    spec = RunSpec(argv=["bash", "-c", HOSTILE_TREE, "tree", str(pids)], **kw)  # type: ignore[arg-type]
    return spec, pids


def _wait_pids(path: Path, n: int) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists():
            pids = [int(x) for x in path.read_text().split()]
            if len(pids) >= n:
                return pids
        time.sleep(0.01)
    raise AssertionError("tree did not start")


def test_timeout_kills_whole_hostile_tree(tmp_path: Path) -> None:
    spec, pid_file = _tree_spec(tmp_path, timeout=1.0, kill_grace=0.3)
    started = time.monotonic()
    result, sink = run_spec(spec)
    elapsed = time.monotonic() - started
    pids = [int(x) for x in pid_file.read_text().split()]
    assert len(pids) == 4
    assert result.outcome is Outcome.TIMED_OUT
    assert result.reason == "timeout"
    assert result.exit_status == 124
    assert elapsed < 5
    assert not [p for p in pids if alive(p)], "processes of the job survived"
    assert not zombie_children(), "killed orphans left as zombies"
    assert "ready\n" in sink.text()


def test_timeout_without_cgroup_uses_process_tree(tmp_path: Path) -> None:
    spec, pid_file = _tree_spec(tmp_path, timeout=1.0, kill_grace=0.2)
    sandbox = LocalSandbox(use_cgroup=False)
    sandbox.setup()
    try:
        result, _ = run_spec(spec, sandbox=sandbox)
    finally:
        sandbox.cleanup()
    assert result.kill_method == "process-tree"
    pids = [int(x) for x in pid_file.read_text().split()]
    assert not [p for p in pids if alive(p)]
    assert not zombie_children()


def test_cgroup_is_used_where_available(tmp_path: Path) -> None:
    result, _ = run_spec(sh("true"))
    assert result.kill_method in ("cgroup", "process-tree")
    if (
        Path("/sys/fs/cgroup/unified/cgroup.procs").exists()
        or Path("/sys/fs/cgroup/cgroup.procs").exists()
    ):
        assert result.kill_method == "cgroup"


def test_leftover_daemon_is_killed_when_main_exits(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon"
    line = f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 300' & sleep 0.2; exit 0"
    result, _ = run_spec(sh(line))
    assert result.outcome is Outcome.SUCCEEDED
    pid = int(pid_file.read_text())
    assert not alive(pid)
    assert result.killed >= 1


def test_grace_lets_a_polite_job_finish_cleanly(tmp_path: Path) -> None:
    line = "trap 'echo cleaning; exit 0' TERM; echo up; while :; do sleep 0.05; done"
    result, sink = run_spec(sh(line, timeout=0.5, kill_grace=5))
    assert result.outcome is Outcome.TIMED_OUT
    assert "cleaning" in sink.text()
    assert result.duration < 4


def test_stop_signal_is_configurable() -> None:
    line = "trap 'echo got-int; exit 0' INT; echo up; while :; do sleep 0.05; done"
    _result, sink = run_spec(sh(line, timeout=0.5, stop_signal=2, kill_grace=5))
    assert "got-int" in sink.text()


def test_idle_timeout_fires_and_says_so() -> None:
    result, _ = run_spec(
        sh("echo one; sleep 0.2; echo two; sleep 60", idle_timeout=0.6, kill_grace=0.2)
    )
    assert result.outcome is Outcome.TIMED_OUT
    assert result.reason == "idle_timeout"
    assert result.duration < 5


def test_output_resets_the_idle_clock() -> None:
    line = "for i in 1 2 3 4 5 6; do echo $i; sleep 0.2; done"
    result, _ = run_spec(sh(line, idle_timeout=0.6))
    assert result.outcome is Outcome.SUCCEEDED


def test_cancel_event_stops_job(tmp_path: Path) -> None:
    spec, pid_file = _tree_spec(tmp_path, kill_grace=0.2)

    async def go() -> object:
        cancel = asyncio.Event()
        task = asyncio.ensure_future(run(spec, sinks=[ListSink()], cancel=cancel))
        await asyncio.get_running_loop().run_in_executor(None, _wait_pids, pid_file, 4)
        cancel.set()
        return await task

    result = asyncio.run(go())
    assert result.outcome is Outcome.CANCELLED  # type: ignore[attr-defined]
    assert not [p for p in _wait_pids(pid_file, 4) if alive(p)]


def test_a_cancel_future_stops_job(tmp_path: Path) -> None:
    # The worker's form: a future, watched by a callback instead of a task.
    spec, pid_file = _tree_spec(tmp_path, kill_grace=0.2)

    async def go() -> object:
        cancel: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(run(spec, sinks=[ListSink()], cancel=cancel))
        await asyncio.get_running_loop().run_in_executor(None, _wait_pids, pid_file, 4)
        cancel.set_result(None)
        return await task

    result = asyncio.run(go())
    assert result.outcome is Outcome.CANCELLED  # type: ignore[attr-defined]
    assert not [p for p in _wait_pids(pid_file, 4) if alive(p)]


def _stop_then(tmp_path: Path, force_first: bool) -> tuple[object, float, list[int]]:
    """Run the hostile tree with a 20 s grace; request a stop, then force it
    (``force_first``: force without a request). The result, the seconds from
    the force to the result, and the tree's pids."""
    spec, pid_file = _tree_spec(tmp_path, kill_grace=20)

    async def go() -> tuple[object, float]:
        stop = Stop()
        task = asyncio.ensure_future(run(spec, sinks=[ListSink()], cancel=stop))
        await asyncio.get_running_loop().run_in_executor(None, _wait_pids, pid_file, 4)
        if not force_first:
            stop.request()
            await asyncio.sleep(0.5)
            assert not task.done(), "the tree ignores TERM: it must still be in its grace"
        began = time.monotonic()
        stop.force()
        result = await task
        return result, time.monotonic() - began

    result, took = asyncio.run(go())
    return result, took, _wait_pids(pid_file, 4)


def test_a_forced_stop_kills_the_tree_in_the_middle_of_its_grace(tmp_path: Path) -> None:
    result, took, pids = _stop_then(tmp_path, force_first=False)
    assert result.outcome is Outcome.CANCELLED  # type: ignore[attr-defined]
    assert took < 10  # the grace is 20 s
    assert not [p for p in pids if alive(p)]
    assert not zombie_children()


def test_a_stop_forced_at_once_gets_no_grace(tmp_path: Path) -> None:
    result, took, pids = _stop_then(tmp_path, force_first=True)
    assert result.outcome is Outcome.CANCELLED  # type: ignore[attr-defined]
    assert took < 10
    assert not [p for p in pids if alive(p)]


def test_cancelling_the_task_stops_job_then_reraises(tmp_path: Path) -> None:
    spec, pid_file = _tree_spec(tmp_path, kill_grace=0.2)

    async def go() -> None:
        task = asyncio.ensure_future(run(spec))
        await asyncio.get_running_loop().run_in_executor(None, _wait_pids, pid_file, 4)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return
        raise AssertionError("cancellation was swallowed")

    asyncio.run(go())
    assert not [p for p in _wait_pids(pid_file, 4) if alive(p)]
    assert not zombie_children()


def test_sandbox_slot_is_reused_across_attempts() -> None:
    sandbox = LocalSandbox()
    sandbox.setup()
    try:
        path = sandbox.cgroup.path if sandbox.cgroup else None
        for _ in range(3):
            result, _ = run_spec(sh("true"), sandbox=sandbox)
            assert result.outcome is Outcome.SUCCEEDED
        assert (sandbox.cgroup.path if sandbox.cgroup else None) == path
    finally:
        sandbox.cleanup()
    if path is not None:
        assert not path.exists()
    assert os.getpid()
