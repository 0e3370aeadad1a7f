"""``run(turn=...)``: prepared at once, launched only on ``turn.go()``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from stockade.runner.attempt import run
from stockade.runner.events import ListSink
from stockade.runner.result import Outcome
from stockade.runner.spec import RunSpec
from stockade.runner.turn import Turn
from stockade.sandbox.local import LocalSandbox


def test_the_job_starts_when_its_turn_comes() -> None:
    async def main() -> tuple[float, float, str, object]:
        turn, sink = Turn(), ListSink()
        task = asyncio.ensure_future(run(RunSpec(shell="date +%s.%N"), sinks=[sink], turn=turn))
        await asyncio.sleep(0.3)
        assert not task.done() and not turn.launched
        assert sink.text() == ""  # prepared, nothing run
        given = time.time()
        turn.go()
        assert turn.launched  # the launch ran inside go()
        result = await task
        return given, float(sink.text()), result.outcome, result.duration

    given, ran_at, outcome, duration = asyncio.run(main())
    assert outcome is Outcome.SUCCEEDED
    assert ran_at >= given - 0.01
    assert isinstance(duration, float) and duration < 0.3  # its clock started at the launch


def test_a_turn_given_before_the_attempt_is_ready_launches_it_at_once() -> None:
    async def main() -> object:
        turn = Turn()
        turn.go()
        return (await run(RunSpec(argv=["true"]), turn=turn)).outcome

    assert asyncio.run(main()) is Outcome.SUCCEEDED


def test_cancelled_while_waiting_it_never_starts(tmp_path: Path) -> None:
    async def main() -> tuple[object, Turn]:
        turn = Turn()
        cancel: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(
            run(RunSpec(shell="touch started", workdir=str(tmp_path)), cancel=cancel, turn=turn)
        )
        await asyncio.sleep(0.1)
        cancel.set_result(None)
        result = await task
        turn.go()  # too late: nothing is launched
        await asyncio.sleep(0.1)
        return result, turn

    result, turn = asyncio.run(main())
    assert (result.outcome, result.reason) == (Outcome.CANCELLED, "cancelled")  # type: ignore[attr-defined]
    assert result.error == "stopped before it started"  # type: ignore[attr-defined]
    assert not turn.launched and not (tmp_path / "started").exists()


def test_go_can_name_the_sandbox_the_slot_has_now() -> None:
    # A slot set up anew while its next attempt waited has a new sandbox.
    old, new = LocalSandbox(slot="turn-old"), LocalSandbox(slot="turn-new")
    old.setup()
    new.setup()
    try:
        if new.cgroup is None:
            pytest.skip("no slot cgroup on this host")

        async def main() -> str:
            turn, sink = Turn(), ListSink()
            task = asyncio.ensure_future(
                run(RunSpec(shell="cat /proc/self/cgroup"), sinks=[sink], sandbox=old, turn=turn)
            )
            await asyncio.sleep(0.1)
            turn.go(new)
            await task
            return sink.text()

        where = asyncio.run(main())
        assert "turn-new" in where and "turn-old" not in where
    finally:
        old.cleanup()
        new.cleanup()
