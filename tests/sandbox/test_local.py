"""The local backend's limits: controller cgroups and rlimits, for real."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from stockade.errors import SetupError
from stockade.runner.result import Outcome
from stockade.sandbox.base import Sandbox
from stockade.sandbox.limits import LimitCgroups, ResourceLimits, v1_hierarchies
from stockade.sandbox.local import LocalSandbox
from tests.sandbox.helpers import run_in

MakeSandbox = Callable[..., Sandbox]


def _limit_dirs(sandbox: Sandbox) -> LimitCgroups:
    assert isinstance(sandbox, LocalSandbox)
    dirs = sandbox.resources.limit_cgroups
    assert dirs is not None
    return dirs


def test_limits_are_written_and_removed(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox("local", limits={"memory": "100MiB", "pids": 40, "cpu": 0.25})
    dirs = _limit_dirs(sandbox)
    memory, pids, cpu = dirs.v1.get("memory"), dirs.v1.get("pids"), dirs.v1.get("cpu")
    if memory is None or pids is None or cpu is None:
        pytest.skip("this host has no v1 memory/pids/cpu controllers (cgroup2 path)")
    assert (memory / "memory.limit_in_bytes").read_text().strip() == str(100 << 20)
    assert (pids / "pids.max").read_text().strip() == "40"
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "25000"
    assert memory.name == f"{os.getpid()}-{sandbox.slot}"  # type: ignore[attr-defined]
    sandbox.cleanup()
    assert not any(p.exists() for p in (memory, pids, cpu))


def test_job_is_born_inside_its_limit_cgroups_and_stockade_is_not(
    make_sandbox: MakeSandbox, workspace: Path
) -> None:
    sandbox = make_sandbox("local", limits={"memory": "100MiB", "pids": 40})
    dirs = _limit_dirs(sandbox)
    before = Path("/proc/thread-self/cgroup").read_text()
    _, out, _ = run_in(sandbox, "cat /proc/self/cgroup", workspace)
    where = {
        name: path
        for _, names, path in (line.split(":", 2) for line in out.splitlines())
        for name in names.split(",")
    }
    for name, directory in dirs.v1.items():
        assert where[name].endswith(f"/stockade/{directory.name}")
    # stockade's own thread went back where it was.
    assert Path("/proc/thread-self/cgroup").read_text() == before


def test_other_threads_do_not_use_up_the_pids_limit(
    make_sandbox: MakeSandbox, workspace: Path
) -> None:
    if "pids" not in v1_hierarchies():
        pytest.skip("needs the v1 pids controller: cgroup2 moves whole processes")
    stop = threading.Event()
    threads = [threading.Thread(target=stop.wait) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        sandbox = make_sandbox("local", limits={"pids": 4})
        result, out, _ = run_in(sandbox, "echo started", workspace)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert result.outcome is Outcome.SUCCEEDED and out == "started\n"


def test_rlimits_through_prlimit(make_sandbox: MakeSandbox, workspace: Path) -> None:
    sandbox = make_sandbox("local", limits={"open_files": 64, "file_size": "1MiB"})
    line = "ulimit -n; ulimit -Hn; dd if=/dev/zero of=big bs=1M count=2 2>/dev/null; echo rc=$?"
    _, out, _ = run_in(sandbox, line, workspace)
    assert out.splitlines()[:2] == ["64", "64"]
    assert "rc=153" in out  # 128 + SIGXFSZ: the file-size limit stopped dd
    assert (workspace / "big").stat().st_size == 1 << 20


def test_unenforceable_limit_is_a_setup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A host without any pids controller cannot be had here, so its discovery is
    # replaced: no v1 hierarchy and no cgroup2 slot to fall back on.
    monkeypatch.setattr("stockade.sandbox.limits.v1_hierarchies", dict)
    with pytest.raises(SetupError, match="pids limit"):
        LimitCgroups.create("nowhere", ResourceLimits(pids=10), v2_slot=None)


def test_a_pids_limit_too_small_to_start_is_a_launch_error(
    make_sandbox: MakeSandbox, workspace: Path
) -> None:
    if "pids" not in v1_hierarchies():
        pytest.skip("needs the v1 pids controller")
    sandbox = make_sandbox("local", limits={"pids": 1})  # the spawning thread itself is one
    result, _, _ = run_in(sandbox, "true", workspace)
    assert result.outcome is Outcome.FAILED and result.reason == "launch_error"
    assert result.error is not None and "raise limits.pids" in result.error


def test_slot_cgroups_of_dead_stockade_processes_are_pruned() -> None:
    hierarchies = v1_hierarchies()
    if "pids" not in hierarchies:
        pytest.skip("needs the v1 pids controller")
    mount, own = hierarchies["pids"]
    stale = mount / own.lstrip("/") / "stockade" / "4194301-slot1"  # pid above the kernel's range
    stale.mkdir(parents=True)
    fresh = LimitCgroups.create("pruner", ResourceLimits(pids=10), v2_slot=None)
    try:
        assert not stale.exists()
    finally:
        fresh.remove()
