"""``stockade exec`` as users run it: a real subprocess, real exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stockade.cli.exec_cmd import build_parser, defaults
from tests.runner.helpers import alive

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


def stockade(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [*STOCKADE, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def test_help_lists_commands() -> None:
    proc = stockade("--help")
    assert proc.returncode == 0
    assert "exec" in proc.stdout and "validate" in proc.stdout


def test_exec_passes_output_through_and_exits_with_job_code() -> None:
    proc = stockade("exec", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert proc.returncode == 7
    assert proc.stdout == "out\n"
    assert "err\n" in proc.stderr
    assert "failed (exit 7)" in proc.stderr


def test_exec_timeout_exits_124() -> None:
    started = time.monotonic()
    proc = stockade("exec", "--timeout", "500ms", "--kill-grace", "100ms", "--", "sleep", "30")
    assert proc.returncode == 124
    assert time.monotonic() - started < 10
    assert "timed_out" in proc.stderr


def test_exec_signal_exits_128_plus_n() -> None:
    proc = stockade("exec", "--shell", "kill -TERM $$")
    assert proc.returncode == 128 + 15


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["exec", "--input", "{bad", "--", "true"], "--input is not valid JSON"),
        (["exec", "--input", "@/no/such/file.json", "--", "true"], "cannot read input file"),
        (["exec", "--output-format", "xml", "--", "true"], "--output-format: unknown format"),
        (["exec", "--timeout", "soon", "--", "true"], "--timeout: bad duration"),
        (["exec", "--max-output", "lots", "--", "true"], "--max-output"),
        (["exec", "--secret", "NOPE_NOT_SET_123", "--", "true"], "$NOPE_NOT_SET_123 is not set"),
        (["exec", "--env", "novalue", "--", "true"], "--env takes K=V"),
        (["exec", "--success-codes", "0,300", "--", "true"], "exit codes are 0..255"),
        (["exec", "--stop-signal", "SIGNOPE", "--", "true"], "unknown signal"),
        (["exec", "--"], "no command after --"),
        (["exec"], "nothing to run"),
        (["exec", "--input-format", "env", "--input", "[1]", "--", "true"], "needs a JSON object"),
        (["exec", "--workdir", "/no/such/dir", "--", "true"], "does not exist"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = stockade(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr


def test_exec_json_events() -> None:
    proc = stockade(
        "exec", "--json", "--shell", "echo one; echo two; echo '::progress value=10::p'"
    )
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "finish"
    assert [e["text"] for e in events if e["event"] == "output"] == ["one\n", "two\n"]
    assert "progress" in kinds and "command" in kinds
    assert events[-1]["result"]["outcome"] == "succeeded"


def test_exec_result_file_and_input(tmp_path: Path) -> None:
    input_file = tmp_path / "in.json"
    input_file.write_text('{"name": "Ada"}')
    result_file = tmp_path / "result.json"
    proc = stockade(
        "exec", "--input", f"@{input_file}", "--result", str(result_file),
        "--shell", 'echo "::set-output name=who::$INPUT_NAME"',
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(result_file.read_text())
    assert result["outputs"]["who"] == "Ada"
    assert result["outcome"] == "succeeded"
    assert Path(result["log_path"]).exists()
    usage = result["usage"]
    assert usage["cpu_user"] >= 0 and usage["wall"] == result["duration"]


def test_exec_secret_from_environment_is_masked() -> None:
    proc = stockade("exec", "--secret", "MY_PASS", "--shell", 'echo "pw=$MY_PASS"',
                    env={"MY_PASS": "correct-horse-battery"})  # fmt: skip
    assert proc.stdout == "pw=***\n"


def test_exec_task_from_config_with_overrides() -> None:
    proc = stockade(
        "exec", "hello", "--input", '{"name": "newcomer"}', "--result", "-", cwd=EXAMPLES
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Hello, newcomer!\n")
    result = json.loads(proc.stdout.split("\n", 1)[1])
    assert result["task"] == "hello"
    assert result["outputs"]["greeting"] == "Hello, newcomer"
    assert "notice: greeting newcomer" in proc.stderr


def test_exec_unknown_task_suggests(tmp_path: Path) -> None:
    proc = stockade("exec", "helo", cwd=EXAMPLES)
    assert proc.returncode == 2
    assert "unknown task 'helo'" in proc.stderr and "hello" in proc.stderr


def test_exec_task_without_config_says_how(tmp_path: Path) -> None:
    proc = stockade("exec", "hello", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no stockade.yaml here" in proc.stderr


def _exec_until_up(*args: str) -> subprocess.Popen[str]:
    """``stockade exec ARGS`` in the background, once its job has printed ``up``."""
    proc = subprocess.Popen(
        [*STOCKADE, "exec", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "up\n"
    return proc


def test_sigint_cancels_job_and_kills_tree(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    line = f"setsid sh -c 'echo $$ >> {pid_file}; exec sleep 300' & echo $$ >> {pid_file}; echo up; sleep 300"
    proc = _exec_until_up("--kill-grace", "200ms", "--shell", line)
    deadline = time.monotonic() + 5
    while len(pid_file.read_text().split()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 130
    assert "cancelled" in err
    for pid in pid_file.read_text().split():
        assert (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        )


def test_a_second_signal_kills_the_job_in_its_grace(tmp_path: Path) -> None:
    """A job that ignores SIGTERM, with a 20 s grace: the first SIGINT starts
    the stop, a second one kills the whole tree at once."""
    pid_file = tmp_path / "pids"
    line = f"trap '' TERM; sleep 60 & echo $! >> {pid_file}; echo $$ >> {pid_file}; echo up; wait"
    proc = _exec_until_up("--kill-grace", "20s", "--shell", line)
    pids = [int(p) for p in pid_file.read_text().split()]
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert proc.poll() is None and all(alive(p) for p in pids), "no grace to cut short"
    began = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - began
    print(f"exec, second signal: exited after {took:.2f}s")
    assert took < 10  # the grace is 20 s
    assert proc.returncode == 130
    assert "cancelled" in err
    assert not [p for p in pids if alive(p)]


def test_validate_and_schema() -> None:
    proc = stockade("validate", str(EXAMPLES / "full" / "stockade.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout
    proc = stockade("schema")
    assert proc.returncode == 0
    assert "properties" in json.loads(proc.stdout)


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "stockade.yaml"
    bad.write_text(
        "version: 1\ntasks:\n  a:\n    run: x\n    timout: 5s\n  b:\n    run: y\n    timeout: soon\n"
    )
    proc = stockade("validate", str(bad))
    assert proc.returncode == 1
    assert f"{bad}:5:" in proc.stderr and "timeout" in proc.stderr
    assert f"{bad}:8:" in proc.stderr


FLAKY_TASK = (
    "version: 1\ntasks:\n  flaky:\n"
    "    run: 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; "
    "echo try $n; [ $n -ge 3 ] || exit 75'\n"
    "    max_attempts: 2\n    backoff: {initial: 10ms, max: 20ms}\n"
)


def test_exec_task_retries_as_the_worker_does() -> None:
    """The task's max_attempts and backoff (exec ran once and exited 75):
    examples/retry, whose task fails twice, then succeeds."""
    proc = stockade("exec", "flaky", "--result", "-", cwd=EXAMPLES / "retry")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("attempt 1\nattempt 2\nattempt 3\n")  # each attempt's output
    assert "attempt 1 of 3 retryable (exit 75); retrying in " in proc.stderr
    assert "attempt 2 of 3 retryable" in proc.stderr
    assert json.loads(proc.stdout.split("attempt 3\n", 1)[1])["attempt"] == 3


def test_exec_task_out_of_attempts_and_no_retry(tmp_path: Path) -> None:
    (tmp_path / "stockade.yaml").write_text(
        FLAKY_TASK.replace("max_attempts: 3", "max_attempts: 2")
    )
    proc = stockade("exec", "flaky", cwd=tmp_path)
    assert proc.returncode == 75 and proc.stdout == "try 1\ntry 2\n", proc.stderr
    assert "retryable (exit 75) after 2 attempts" in proc.stderr
    (tmp_path / "count").unlink()
    once = stockade("exec", "--no-retry", "flaky", cwd=tmp_path)
    assert once.returncode == 75 and once.stdout == "try 1\n", once.stderr


def test_ctrl_c_during_a_retrys_backoff_ends_it(tmp_path: Path) -> None:
    """The backoff is not slept through: Ctrl-C ends exec at once, with 130."""
    (tmp_path / "stockade.yaml").write_text(
        FLAKY_TASK.replace("initial: 10ms, max: 20ms", "initial: 10m, max: 10m")
    )
    err = tmp_path / "stderr"
    with err.open("w") as sink:
        proc = subprocess.Popen(
            [*STOCKADE, "exec", "flaky"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=sink,
            text=True,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while "retrying in" not in err.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130 and out == "try 1\n", err.read_text()
    assert "retryable (exit 75)\n" in err.read_text()  # its last attempt's end, as it was


def test_bare_command_gets_the_options_the_parser_gives_for_none() -> None:
    """``exec -- CMD`` skips argparse and takes :func:`defaults` instead: the
    two must agree on every option, or the fast path would run differently."""
    assert defaults() == vars(build_parser().parse_args([]))
