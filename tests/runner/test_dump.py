"""A hang diagnosed before it is killed: the dump signal, a short wait, then the
stop ladder; real Go and Python programs print their stacks into the log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stockade.runner.result import Outcome
from stockade.runner.spec import RunSpec
from stockade.spec.task import TaskSpec
from tests.runner.helpers import run_spec

GO_HANG = """package main

import "time"

func waitForever(c chan int) { <-c }

func main() {
	go func() { for { time.Sleep(time.Hour) } }()
	println("started")
	waitForever(make(chan int))
}
"""

PY_HANG = """import sys, time

def wait_forever():
    while True:
        time.sleep(60)

print("started", flush=True)
wait_forever()
"""


def _log_text(path: str, stream: str) -> str:
    lines = Path(path).read_text().splitlines()
    return "".join(r["text"] for r in map(json.loads, lines) if r["stream"] == stream)


@pytest.fixture(scope="module")
def go_hang(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("gohang")
    (src / "main.go").write_text(GO_HANG)
    env = {**os.environ, "GOCACHE": str(src / "cache"), "GO111MODULE": "off", "GOFLAGS": ""}
    subprocess.run(
        ["go", "build", "-o", "hang", "main.go"], cwd=src, env=env, check=True, timeout=300
    )
    return src / "hang"


def test_go_prints_its_goroutines_on_timeout(go_hang: Path, tmp_path: Path) -> None:
    spec = RunSpec(
        argv=[str(go_hang)], timeout=1.0, dumps={"timeout": (int(signal.SIGQUIT), 10.0)},
        data_dir=str(tmp_path / "data"), workdir=str(tmp_path),
    )  # fmt: skip
    begun = time.monotonic()
    result, _ = run_spec(spec)
    assert result.outcome is Outcome.TIMED_OUT and result.reason == "timeout"
    assert result.dump is not None and result.dump["signal"] == "SIGQUIT"
    assert result.dump["on"] == "timeout" and result.dump["log"] == result.log_path
    assert result.dump["offsets"]["stderr"] == len("started\n")  # println writes to stderr
    stderr = _log_text(str(result.log_path), "stderr")
    dumped = stderr[result.dump["offsets"]["stderr"] :]
    assert "SIGQUIT: quit" in dumped and "main.waitForever" in dumped, stderr
    assert "goroutine 1 [chan receive]" in dumped
    # Go exits once it has dumped: the stop did not wait out the 10 s.
    assert time.monotonic() - begun < 8


def test_python_prints_its_stack_on_idle_timeout(tmp_path: Path) -> None:
    (tmp_path / "hang.py").write_text(PY_HANG)
    task = TaskSpec.model_validate(
        {"command": [sys.executable, "hang.py"], "idle_timeout": "1s",
         "on_idle_timeout": {"dump": "SIGABRT", "dump_wait": "10s"}}
    )  # fmt: skip
    spec = task.to_run_spec("hang", secrets={}, data_dir=tmp_path / "data")
    spec.workdir = str(tmp_path)
    result, _ = run_spec(spec)
    assert result.outcome is Outcome.TIMED_OUT and result.reason == "idle_timeout"
    assert result.dump is not None and result.dump["signal"] == "SIGABRT"
    assert result.log_path is not None
    stderr = _log_text(result.log_path, "stderr")
    assert "Fatal Python error: Aborted" in stderr
    assert "in wait_forever" in stderr and 'hang.py", line 8 in <module>' in stderr


def test_a_job_that_ignores_the_dump_is_still_stopped(tmp_path: Path) -> None:
    spec = RunSpec(
        shell="trap '' QUIT; echo up; sleep 60", timeout=0.5, kill_grace=0.5,
        dumps={"timeout": (int(signal.SIGQUIT), 0.5)}, data_dir=str(tmp_path),
        workdir=str(tmp_path),
    )  # fmt: skip
    result, _ = run_spec(spec)
    assert result.outcome is Outcome.TIMED_OUT and result.dump is not None
    assert result.signal == signal.SIGTERM


def test_on_timeout_keeps_its_string_form_and_takes_a_mapping() -> None:
    plain = TaskSpec.model_validate({"run": "true", "on_timeout": "retry"})
    assert plain.timeout_action == "retry" and plain.dumps() == {}
    hang = TaskSpec.model_validate(
        {"run": "true", "on_timeout": {"dump": "QUIT", "dump_wait": "2s", "action": "retry"}}
    )
    assert hang.timeout_action == "retry"
    assert hang.dumps() == {"timeout": (int(signal.SIGQUIT), 2.0)}
    assert hang.to_run_spec("t", secrets={}).dumps == hang.dumps()
