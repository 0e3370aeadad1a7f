"""What an attempt used, measured for real: rusage of the reaped job, and the
slot cgroups' peaks where a limit made them."""

from __future__ import annotations

import asyncio
import resource
import sys
from pathlib import Path

from stockade.runner.attempt import run
from stockade.runner.result import Outcome, Result
from stockade.runner.spec import RunSpec
from tests.sandbox.conftest import require
from tests.sandbox.helpers import run_in
from tests.sandbox.test_bwrap import MakeSandbox

MIB = 1 << 20


def hungry(mib: int = 160) -> str:
    """A job that holds ``mib`` MiB resident and burns about 0.3 s of CPU in user mode."""
    return (
        f"{sys.executable} -c '"
        f'import os; b = bytearray({mib} << 20); b[::4096] = b"x" * len(b[::4096]); '
        "t = os.times().user\n"
        "while os.times().user - t < 0.3: pass'"
    )


HUNGRY = hungry()


def test_every_job_gets_cpu_memory_and_wall(make_sandbox: MakeSandbox, workspace: Path) -> None:
    sandbox = make_sandbox("local")
    # Above this process's own peak, which Linux carries into a child's ru_maxrss.
    mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 + 64
    result, _, _ = run_in(sandbox, hungry(mib), workspace)
    assert result.outcome is Outcome.SUCCEEDED, result
    usage = result.usage
    assert usage is not None
    assert usage["cpu_user"] >= 0.25 and usage["cpu_system"] >= 0
    assert usage["max_rss"] >= mib * MIB
    assert usage["wall"] == result.duration
    # Without a limit there is no controller cgroup: no guess for these.
    assert usage["memory_peak"] is None and usage["pids_peak"] is None


def test_concurrent_jobs_are_measured_apart(workspace: Path) -> None:
    """Two jobs at once in one process: the idle one is not charged the busy one's CPU."""

    async def both() -> tuple[Result, Result]:
        busy = RunSpec(shell=HUNGRY, workdir=str(workspace), inherit_env=False)
        idle = RunSpec(shell="sleep 0.5", workdir=str(workspace), inherit_env=False)
        return await asyncio.gather(run(busy, log_file=False), run(idle, log_file=False))

    busy, idle = asyncio.run(both())
    assert busy.usage is not None and idle.usage is not None
    assert busy.usage["cpu_user"] >= 0.25
    assert idle.usage["cpu_user"] + idle.usage["cpu_system"] < 0.1
    # sleep's own peak is below this test process's, which Linux carries into
    # a child's ru_maxrss at exec: not a figure of the job, so not given.
    assert idle.usage["max_rss"] is None


def test_cgroup_peaks_with_limits(make_sandbox: MakeSandbox, workspace: Path) -> None:
    sandbox = make_sandbox("local", limits={"memory": "256MiB", "pids": 64})
    five = "for i in 1 2 3 4 5; do sleep 0.3 & done; wait"
    result, _, _ = run_in(sandbox, five, workspace)
    assert result.usage is not None
    assert result.usage["pids_peak"] is not None and result.usage["pids_peak"] >= 6
    assert result.usage["memory_limit"] == 256 * MIB
    # The memory peak is reset per launch: a small job after a hungry one is small.
    big, _, _ = run_in(sandbox, HUNGRY, workspace)
    small, _, _ = run_in(sandbox, "true", workspace)
    assert big.usage is not None and small.usage is not None
    assert big.usage["memory_peak"] >= 160 * MIB
    assert small.usage["memory_peak"] < 16 * MIB


def test_oom_says_the_limit_and_the_peak(make_sandbox: MakeSandbox, workspace: Path) -> None:
    sandbox = make_sandbox("local", limits={"memory": "32MiB"})
    result, _, _ = run_in(sandbox, "dd if=/dev/zero of=/dev/null bs=256M count=1", workspace)
    assert result.reason == "oom", result
    assert result.error is not None
    assert result.error.startswith("memory limit 32.0MiB reached (peak "), result.error
    assert result.usage is not None and result.usage["memory_peak"] >= 31 * MIB


def test_bwrap_gives_no_rusage_figures_it_does_not_have(
    make_sandbox: MakeSandbox, workspace: Path
) -> None:
    """bwrap does not reap its namespace's init: its rusage is not the job's."""
    require("bwrap")
    sandbox = make_sandbox("bwrap", limits={"memory": "256MiB"})
    burn = "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"
    result, _, _ = run_in(sandbox, burn, workspace)
    assert result.usage is not None and result.outcome is Outcome.SUCCEEDED
    assert result.usage["cpu_user"] is None and result.usage["max_rss"] is None
    assert result.usage["memory_peak"] is not None and result.usage["wall"] == result.duration
