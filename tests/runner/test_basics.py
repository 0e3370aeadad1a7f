"""The runner end to end on real processes: outcomes, exit codes, events."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from stockade.errors import InputError, UsageError
from stockade.runner.attempt import run
from stockade.runner.events import ListSink
from stockade.runner.result import Outcome
from stockade.runner.spec import RunSpec
from tests.runner.helpers import run_spec, sh


def test_echo_succeeds_with_stdout_output() -> None:
    result, sink = run_spec(RunSpec(argv=["echo", "hello"]))
    assert result.outcome is Outcome.SUCCEEDED
    assert result.exit_code == 0
    assert result.outputs == {"stdout": "hello\n"}
    assert sink.text() == "hello\n"
    assert sink.kinds()[0] == "start" and sink.kinds()[-1] == "finish"
    assert result.streams["stdout"].bytes_seen == 6


class _OutputOnly(ListSink):
    """A sink that uses output only, like the worker's log sink."""

    event_kinds = frozenset({"output"})


def test_lifecycle_events_are_built_only_for_a_sink_that_uses_them() -> None:
    only = _OutputOnly()
    result = asyncio.run(run(RunSpec(argv=["echo", "hello"]), sinks=[only]))
    assert result.outcome is Outcome.SUCCEEDED and result.outputs == {"stdout": "hello\n"}
    assert only.kinds() == ["output"]
    # Next to a sink that uses them, every sink is given them.
    both, plain = _OutputOnly(), ListSink()
    asyncio.run(run(RunSpec(argv=["echo", "hello"]), sinks=[both, plain]))
    assert plain.kinds() == ["start", "output", "finish"] == both.kinds()


def test_exit_codes_classified_by_default_classes() -> None:
    assert run_spec(sh("exit 75"))[0].outcome is Outcome.RETRYABLE
    failed = run_spec(sh("exit 3"))[0]
    assert failed.outcome is Outcome.FAILED and failed.exit_status == 3


def test_task_code_lists_override_defaults() -> None:
    spec = sh("exit 3", success_codes=(0, 3), retry_codes=(4,))
    assert run_spec(spec)[0].outcome is Outcome.SUCCEEDED
    assert run_spec(sh("exit 4", retry_codes=(4,)))[0].outcome is Outcome.RETRYABLE
    assert run_spec(sh("exit 0", failure_codes=(0,)))[0].outcome is Outcome.FAILED


def test_signal_death_reports_signal_and_128_plus_n() -> None:
    result, _ = run_spec(sh("kill -KILL $$"))
    assert result.signal == signal.SIGKILL
    assert result.exit_code is None
    assert result.exit_status == 128 + 9
    assert result.outcome is Outcome.FAILED


def test_missing_program_is_a_result_not_a_crash() -> None:
    result, sink = run_spec(RunSpec(argv=["/no/such/program"]))
    assert result.outcome is Outcome.FAILED
    assert result.reason == "launch_error"
    assert "no such file" in (result.error or "")
    assert result.exit_status == 127
    assert sink.kinds()[-1] == "finish"


def test_missing_workdir_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        run_spec(RunSpec(argv=["true"], workdir=str(tmp_path / "nope")))


def test_environment_contract(tmp_path: Path) -> None:
    spec = RunSpec(
        argv=[
            "sh",
            "-c",
            'echo "$STOCKADE_JOB_ID $STOCKADE_ATTEMPT $STOCKADE_TASK $STOCKADE_WORKSPACE"; cat "$STOCKADE_STATE"',
        ],
        task="demo",
        job_id="job42",
        attempt=3,
        workdir=str(tmp_path),
        state={"cursor": "7"},
    )
    result, _ = run_spec(spec)
    first, second = result.outputs["stdout"].splitlines()
    assert first == f"job42 3 demo {tmp_path}"
    assert json.loads(second) == {"cursor": "7"}


def test_clean_environment_does_not_inherit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKY_VAR", "x")
    result, _ = run_spec(sh('echo "[$LEAKY_VAR]"', inherit_env=False))
    assert result.outputs["stdout"] == "[]\n"
    result, _ = run_spec(sh('echo "[$LEAKY_VAR]"', inherit_env=True))
    assert result.outputs["stdout"] == "[x]\n"


def test_log_file_has_json_lines(tmp_path: Path) -> None:
    result, _ = run_spec(sh("echo out; echo err >&2"))
    assert result.log_path is not None
    records = [json.loads(line) for line in Path(result.log_path).read_text().splitlines()]
    assert {(r["stream"], r["text"]) for r in records} == {("stdout", "out\n"), ("stderr", "err\n")}
    assert all(isinstance(r["time"], float) for r in records)
    assert str(os.environ["STOCKADE_DATA_DIR"]) in result.log_path


def test_without_log_file_the_sinks_still_get_the_output() -> None:
    result, sink = run_spec(sh("echo out; echo err >&2"), log_file=False)
    assert result.log_path is None
    assert sink.events[0].data["log"] is None
    assert sink.text() == "out\n" and result.outputs == {"stdout": "out\n"}
    logs = Path(os.environ["STOCKADE_DATA_DIR"]) / "logs"
    assert not any(logs.glob(f"{result.job_id}.*")), "no log file for this attempt"


def test_input_that_is_not_an_object_for_env_is_input_error() -> None:
    with pytest.raises(InputError, match="needs a JSON object"):
        run_spec(sh("true"), [1, 2])


def test_result_round_trips_through_json() -> None:
    result, _ = run_spec(sh("echo '::warning file=a.py,line=3::careful'; echo hi"))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["outcome"] == "succeeded"
    assert data["annotations"] == [
        {
            "level": "warning",
            "message": "careful",
            "file": "a.py",
            "line": 3,
            "col": None,
            "title": None,
        }
    ]
    assert set(data) >= {
        "job_id",
        "exit_code",
        "signal",
        "started_at",
        "finished_at",
        "duration",
        "streams",
    }


def test_no_fd_leaks_across_success_failure_and_spawn_error() -> None:
    def fds() -> set[str]:
        return set(os.listdir("/proc/self/fd"))

    run_spec(sh("true"))  # warm up lazily created fds (event loop, etc.)
    before = fds()
    run_spec(sh("echo x"))
    run_spec(sh("exit 9"))
    run_spec(RunSpec(argv=["/no/such"]))
    run_spec(
        sh("cat"),
        {"a": 1},
    )
    run_spec(RunSpec(argv=["cat"], input_format="json_stdin"), {"a": 1})
    assert fds() == before


def test_runtime_directory_is_removed_and_dead_owners_are_pruned(tmp_path: Path) -> None:
    import subprocess

    from stockade.runner import runtime

    seen: list[str] = []
    result, _ = run_spec(sh('echo "$STOCKADE_OUTPUT"', output_format="lines"))
    seen.extend(result.outputs["lines"])
    attempt_dir = Path(seen[0]).parent
    assert not attempt_dir.exists(), "the attempt's runtime directory was left behind"
    base = attempt_dir.parent
    # A process that is gone: its pid, reaped, names a leftover directory.
    gone = subprocess.Popen(["true"])
    gone.wait()
    leftover = base / f"{gone.pid}.1"
    leftover.mkdir()
    (leftover / "state.json").write_text("{}")
    mine = base / f"{os.getpid()}.999999"
    mine.mkdir()
    try:  # a new pool, as a new process has, prunes on first use
        runtime.RuntimePool().acquire(Path(os.environ["STOCKADE_DATA_DIR"])).remove()
        assert not leftover.exists()
        assert mine.exists()
    finally:
        runtime.remove_runtime(mine)
