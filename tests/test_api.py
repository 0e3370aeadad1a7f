"""The public face: ``stockade.run``, ``arun`` and ``sandboxed``, with real
processes and a real bwrap sandbox."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import stockade
from stockade.errors import UsageError
from stockade.runner.result import Outcome

ROOT = Path(__file__).resolve().parents[1]


def test_run_runs_a_command_and_returns_its_result() -> None:
    result = stockade.run(["sh", "-c", "echo hi; exit 3"], timeout=10)
    assert result.outcome is Outcome.FAILED
    assert (result.exit_code, result.outputs) == (3, {"stdout": "hi\n"})


def test_run_takes_a_shell_line_with_input_as_variables() -> None:
    result = stockade.run(shell='echo "$INPUT_NAME"', input={"name": "a; rm -rf /"})
    assert result.outputs == {"stdout": "a; rm -rf /\n"}


def test_bad_options_are_one_line_errors() -> None:
    with pytest.raises(UsageError, match="unknown run option"):
        stockade.run(["true"], timeot=3)
    with pytest.raises(UsageError, match="exactly one of argv or shell"):
        stockade.run()
    with pytest.raises(UsageError, match="unknown sandbox backend 'bwarp'"):
        stockade.run(["true"], sandbox="bwarp")


def test_run_inside_an_event_loop_points_at_arun() -> None:
    async def main() -> None:
        with pytest.raises(UsageError, match=r"await stockade\.arun"):
            stockade.run(["true"])
        assert (await stockade.arun(["true"])).outcome is Outcome.SUCCEEDED

    asyncio.run(main())


def test_a_sandbox_is_set_up_once_for_many_jobs() -> None:
    async def main() -> list[str]:
        async with stockade.sandboxed("bwrap") as box:
            results = [await box.run(["id", "-u"], timeout=10) for _ in range(2)]
        return [str(r.outputs["stdout"]).strip() for r in results]

    assert asyncio.run(main()) == ["65534", "65534"]


def test_arun_in_a_sandbox() -> None:
    result = asyncio.run(stockade.arun(["id", "-u"], sandbox="bwrap", timeout=10))
    assert result.outputs == {"stdout": "65534\n"}


def test_the_python_example_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / "run_jobs.py")],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "succeeded Hello, Ada" in done.stdout
    assert "succeeded one as" in done.stdout and "succeeded two as" in done.stdout
