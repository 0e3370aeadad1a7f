"""The fence: what it decides (pure), and that a SIGKILLed owner's jobs die with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stockade.sandbox.cgroup import cgroup2_root, owner_alive, owner_tag
from stockade.sandbox.fence import Guard, Target, sweep
from stockade.sandbox.leftovers import leftovers
from stockade.sandbox.proctree import start_time
from tests.runner.helpers import alive
from tests.sandbox.conftest import require

STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


def test_a_deadline_kills_its_job_once_and_only_while_it_occupies_the_slot() -> None:
    guard = Guard()
    guard.apply("D 10.0 a b")
    assert guard.apply("C a /cg/1") == []
    guard.apply("C b /cg/2")
    guard.apply("D 20.0 b")  # a renewal moved b on
    assert guard.next_deadline() == 10.0
    assert guard.due(9.9) == []
    assert guard.due(10.0) == [Target("a", path="/cg/1")]
    assert guard.due(15.0) == []  # each deadline fires once
    guard.apply("C c /cg/2")  # b's slot runs c now: b's processes are gone
    assert guard.due(25.0) == []
    assert guard.next_deadline() is None


def test_a_job_launched_after_its_deadline_is_killed_at_once() -> None:
    guard = Guard()
    guard.apply("D 1.0 late")
    assert guard.due(2.0) == []  # not launched yet: nothing to kill
    assert guard.apply("C late /cg/1") == [Target("late", path="/cg/1")]
    guard.apply("X late")  # cleared: a later launch is not killed
    assert guard.apply("C late /cg/1") == []


def test_a_cleared_deadline_never_fires_and_owner_death_kills_everything() -> None:
    guard = Guard()
    guard.apply("C a /cg/1")
    guard.apply("C gone /cg/3")
    guard.apply("R /cg/3")  # removed with its slot: nothing of it to kill
    guard.apply("T b 4242")
    guard.apply("T c 4343")
    guard.apply("E c")
    guard.apply("D 1.0 a b")
    guard.apply("X a b")
    assert guard.due(5.0) == []
    assert guard.everything() == [Target("a", path="/cg/1"), Target("b", pgid=4242)]


def test_at_owner_death_kept_jobs_wait_for_their_deadline_and_a_new_owner() -> None:
    guard = Guard()
    guard.apply("C a /cg/1")
    guard.apply("C b /cg/2")
    guard.apply("C c /cg/3")
    guard.apply("K a")
    guard.apply("K b")
    guard.apply("D 10.0 a b c")
    guard.apply("X b")  # b ended and was recorded: nothing to keep
    # The owner dies: b and c die now, a waits until its deadline.
    assert sorted(t.job for t in guard.orphan()) == ["b", "c"]
    assert guard.holding()
    guard.apply("D 20.0 a")  # a new owner took a over and renewed it
    assert guard.due(15.0) == []
    assert guard.due(20.0) == [Target("a", path="/cg/1")]
    assert not guard.holding()  # nothing left to wait for: the fence exits


def test_a_new_owner_takes_over_some_kept_jobs_and_the_others_die_at_once() -> None:
    guard = Guard()
    for job, path in (("a", "/cg/1"), ("b", "/cg/2")):
        guard.apply(f"C {job} {path}")
        guard.apply(f"K {job}")
    guard.apply("D 10.0 a b")
    assert guard.orphan() == []  # both kept
    assert guard.apply("S a") == [Target("b", path="/cg/2")]
    assert guard.due(11.0) == [Target("a", path="/cg/1")]  # still bounded by its deadline
    assert guard.apply("S") == []


def test_a_slot_cgroup_names_its_owner_by_pid_and_start_time() -> None:
    me = os.getpid()
    assert owner_tag() == f"{me}-{start_time(me)}"
    assert owner_alive(f"{owner_tag()}-slot1")
    assert not owner_alive(f"{me}-{(start_time(me) or 0) + 1}-slot1")  # the pid was reused
    assert owner_alive(f"{me}-slot1")  # the older name: the pid alone
    assert owner_alive("cgroup.procs")  # not a slot cgroup
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert not owner_alive(f"{dead.pid}-123-slot1")


def _with_token(token: str) -> list[int]:
    """Live processes whose command line carries ``token`` (pids as this test sees them)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if token.encode() in cmdline and alive(int(name)):
                found.append(int(name))
    return found


def _started(token: str) -> list[int]:
    deadline = time.monotonic() + 30
    while len(pids := _with_token(token)) < 3:  # the shell, its sleep, the daemon
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.05)
    return pids


def _gone(token: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while _with_token(token):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _job(token: str) -> str:
    """A job that ignores SIGPIPE and leaves a daemon in a session of its own,
    every process of it carrying ``token``."""
    return f"trap '' PIPE; setsid sleep 60.{token} & while :; do echo tick; sleep 0.{token}; done"


@pytest.mark.parametrize("backend", ["local", "bwrap"])
def test_a_sigkilled_exec_leaves_no_job_process(tmp_path: Path, backend: str) -> None:
    args = []
    if backend != "local":
        require(backend)
        args = ["--sandbox", backend]
    token = f"{os.getpid()}{time.monotonic_ns() % 10**6:06d}"
    proc = subprocess.Popen(
        [*STOCKADE, "exec", *args, "--shell", _job(token)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    try:
        _started(token)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert _gone(token), f"job processes {_with_token(token)} outlived exec"
        deadline = time.monotonic() + 10
        while leftovers(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not leftovers(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


#: An owner without a usable cgroup: its job is killed as a process tree.
TREE_OWNER = textwrap.dedent("""
    import asyncio, sys
    from stockade.runner.attempt import run
    from stockade.runner.spec import RunSpec
    from stockade.sandbox import fence
    from stockade.sandbox.local import LocalSandbox
    fence.start()
    box = LocalSandbox(use_cgroup=False)
    box.setup()
    asyncio.run(run(RunSpec(shell=sys.argv[1]), sandbox=box, log_file=False))
""")


def test_a_sigkilled_owner_without_a_cgroup_leaves_no_job_process(tmp_path: Path) -> None:
    token = f"{os.getpid()}{time.monotonic_ns() % 10**6:06d}"
    proc = subprocess.Popen(
        [sys.executable, "-c", TREE_OWNER, _job(token)], stdout=subprocess.DEVNULL, cwd=tmp_path
    )
    try:
        _started(token)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert _gone(token), f"job processes {_with_token(token)} outlived the owner"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sweep_kills_and_removes_the_slot_cgroups_of_dead_owners(tmp_path: Path) -> None:
    root = cgroup2_root()
    if root is None:
        pytest.skip("no cgroup v2 here")
    dead = subprocess.Popen(["true"])
    dead.wait()
    path = root / "stockade" / f"{dead.pid}-1-swept"
    path.mkdir(parents=True)
    mine = root / "stockade" / f"{owner_tag()}-kept"
    mine.mkdir()
    job = subprocess.Popen(["sleep", "60"])
    try:
        (path / "cgroup.procs").write_text(str(job.pid))
        assert str(path) in sweep()
        assert job.wait(10) == -signal.SIGKILL
        assert not path.exists() and mine.exists()
    finally:
        job.kill()
        job.wait()
        mine.rmdir()


def test_a_sigkilled_run_leaves_no_job_process(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    (tmp_path / "stockade.yaml").write_text(
        "pipelines:\n  p:\n    steps:\n      sleep:\n        for_each: [a, b]\n"
        f"""        run: 'sh -c "trap \\"\\" PIPE; echo \\$\\$ >> {pids}; exec sleep 60"'\n"""
    )
    proc = subprocess.Popen(
        [*STOCKADE, "run", "-j", "2", "--plain"], cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while len(pids.read_text().split() if pids.exists() else []) < 2:
            assert time.monotonic() < deadline, "the jobs did not start"
            time.sleep(0.05)
        jobs = [int(p) for p in pids.read_text().split()]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in jobs) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not [p for p in jobs if alive(p)], "jobs outlived stockade run"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
