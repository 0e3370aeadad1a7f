"""Handing a slot on at the job's exit: ``release_slot`` and ``run(released=...)``.

A job that ended cleanly, leaving nothing in its slot cgroup, frees the slot
in the very callback that learns of its exit, before its pipes are drained
and its result made. Anything else (a process left behind, an output file
still to read, an OOM counter to compare) frees it only once this attempt is
done with it, as before. Real processes in real slot cgroups throughout.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from stockade.runner.attempt import run
from stockade.runner.events import ListSink
from stockade.runner.spec import RunSpec
from stockade.sandbox.base import LaunchRequest, Sandbox
from stockade.sandbox.handle import SandboxHandle
from stockade.sandbox.local import LocalSandbox
from stockade.sandbox.process import PopenHandle
from tests.runner.helpers import alive, zombie_children

MakeSandbox = Callable[..., Sandbox]


@pytest.fixture
def slot(make_sandbox: MakeSandbox) -> LocalSandbox:
    sandbox = make_sandbox("local")
    assert isinstance(sandbox, LocalSandbox)
    if sandbox.cgroup is None:
        pytest.skip("no slot cgroup on this host: a slot is never handed on early")
    return sandbox


def _request(argv: list[str], workspace: Path) -> LaunchRequest:
    return LaunchRequest(
        argv=argv, env={"PATH": "/usr/bin:/bin"}, cwd=str(workspace), workspace=str(workspace),
        marker="release-test", stdin_pipe=False, runtime_dirs=[],
    )  # fmt: skip


def _inner(handle: object) -> PopenHandle:
    assert isinstance(handle, SandboxHandle)
    return handle.inner


def test_a_released_slot_is_not_touched_again(slot: LocalSandbox, workspace: Path) -> None:
    async def main() -> None:
        first = slot.launch(_request(["true"], workspace))
        seen: list[bool] = []
        assert first.add_exit_callback(lambda: seen.append(first.release_slot()))
        await first.wait()
        assert seen == [True]
        # The slot's next job, in the same cgroup: the first handle's kill-all
        # and signals must leave it alone.
        second = slot.launch(_request(["sleep", "30"], workspace))
        try:
            first.signal(signal.SIGKILL)
            assert await first.kill_all() == 0
            assert not first.alive()
            assert alive(second.pid)
        finally:
            await second.kill_all()
            second.close()
            first.close()

    asyncio.run(main())


def test_an_exit_callback_added_after_the_exit_is_called_at_once(
    slot: LocalSandbox, workspace: Path
) -> None:
    async def main() -> None:
        handle = slot.launch(_request(["true"], workspace))
        await handle.wait()
        seen: list[str] = []
        assert handle.add_exit_callback(lambda: seen.append("ended"))
        await asyncio.sleep(0)
        assert seen == ["ended"]
        await handle.kill_all()
        handle.close()

    asyncio.run(main())


def test_a_process_left_behind_keeps_the_slot(slot: LocalSandbox, workspace: Path) -> None:
    async def main() -> None:
        handle = slot.launch(_request(["sh", "-c", "sleep 30 & exit 0"], workspace))
        seen: list[bool] = []
        handle.add_exit_callback(lambda: seen.append(handle.release_slot()))
        await handle.wait()
        assert seen == [False]  # the sleep is still in the slot cgroup
        assert handle.alive()
        assert await handle.kill_all() == 1
        assert not handle.alive()
        handle.close()

    asyncio.run(main())


def test_a_handle_that_reads_the_slot_after_the_exit_keeps_it(
    slot: LocalSandbox, workspace: Path
) -> None:
    # OOM attribution compares the slot's oom_kill counter after the exit: the
    # next job could raise it.
    async def main() -> None:
        handle = SandboxHandle(
            _inner(slot.launch(_request(["true"], workspace))), oom_kills=lambda: 0
        )
        await handle.wait()
        assert not handle.release_slot()
        await handle.kill_all()
        handle.close()

    asyncio.run(main())


def _released_while(spec: RunSpec, sandbox: Sandbox) -> tuple[list[list[int]], str]:
    """Run ``spec`` with ``released``; the job's zombies at each call, and stdout."""
    calls: list[list[int]] = []
    sink = ListSink()

    async def main() -> None:
        await run(spec, sinks=[sink], sandbox=sandbox, released=lambda: calls.append(
            zombie_children()
        ))  # fmt: skip

    asyncio.run(main())
    return calls, sink.text("stdout")


def test_a_clean_exit_hands_the_slot_on_before_the_job_is_reaped(
    slot: LocalSandbox, workspace: Path
) -> None:
    spec = RunSpec(shell="echo hi", workdir=str(workspace), inherit_env=False)
    calls, out = _released_while(spec, slot)
    assert len(calls) == 1 and len(calls[0]) == 1  # the job's own zombie, not reaped yet
    assert out == "hi\n"  # and its output is still read whole


def test_a_job_with_an_output_file_hands_the_slot_on_after_reading_it(
    slot: LocalSandbox, workspace: Path
) -> None:
    spec = RunSpec(
        shell="echo '{\"a\": 1}' > out.json", workdir=str(workspace), inherit_env=False,
        output_format="file", output_path="out.json",
    )  # fmt: skip
    calls, _ = _released_while(spec, slot)
    assert calls == [[]]  # reaped, outputs read: the late hand-over


def test_a_job_that_left_a_process_hands_the_slot_on_after_killing_it(
    slot: LocalSandbox, workspace: Path
) -> None:
    spec = RunSpec(shell="sleep 30 & echo $!", workdir=str(workspace), inherit_env=False)
    calls, out = _released_while(spec, slot)
    assert calls == [[]]
    assert not alive(int(out))  # killed before the slot was handed on
