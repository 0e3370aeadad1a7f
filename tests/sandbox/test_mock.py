"""The mock backend: a stand-in for the layers above, never for a real sandbox."""

from __future__ import annotations

import asyncio

from stockade.runner.attempt import run
from stockade.runner.events import ListSink
from stockade.runner.result import Outcome
from stockade.runner.spec import RunSpec
from stockade.sandbox.mock import MockRun, MockSandbox


def test_runner_reads_scripted_output_and_status() -> None:
    sandbox = MockSandbox(
        script=[
            MockRun(stdout=b"::set-output name=n::5\nhello\n", stderr=b"warn\n"),
            MockRun(code=75),
            MockRun(code=None, signal=9, oom=True),
        ]
    )
    sandbox.setup()
    sink = ListSink()
    first = asyncio.run(run(RunSpec(argv=["anything"]), sinks=[sink], sandbox=sandbox))
    second = asyncio.run(run(RunSpec(argv=["again"]), sandbox=sandbox))
    third = asyncio.run(run(RunSpec(argv=["hog"]), sandbox=sandbox))
    sandbox.cleanup()
    assert first.outcome is Outcome.SUCCEEDED and first.outputs["n"] == "5"
    assert "hello" in sink.text() and "warn" in sink.text("stderr")
    assert second.outcome is Outcome.RETRYABLE
    assert third.reason == "oom" and third.outcome is Outcome.FAILED
    assert [call for call, _ in sandbox.calls] == ["setup", "launch", "launch", "launch", "cleanup"]
    assert sandbox.calls[2][1].argv == ["again"]


def test_records_stdin_and_accepts_a_function_script() -> None:
    sandbox = MockSandbox(script=lambda req: MockRun(stdout=" ".join(req.argv).encode()))
    result = asyncio.run(
        run(RunSpec(argv=["echo", "x"], input_format="json_stdin"), {"a": 1}, sandbox=sandbox)
    )
    assert result.outputs["stdout"] == "echo x"
    assert sandbox.handles[0].received_stdin == b'{"a": 1}'
