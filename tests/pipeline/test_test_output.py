"""A long test output keeps its failure: head and tail within a byte budget."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from stockade.pipeline.model import Job, RunState, Status, StepState
from stockade.pipeline.test2json import Test2Json, junit_xml
from stockade.spec.pipeline import StepSpec
from stockade.ui import render

GO_TEST = """\
package chatty

import "testing"

func TestChatty(t *testing.T) {
	for i := 0; i < %d; i++ {
		t.Logf("progress line %%d of a long test", i)
	}
	t.Errorf("the real failure: got 3, want 4")
}
"""


def _go_events(tmp_path: Path, lines: int) -> list[str]:
    """``go test -json`` events of a real test that logs ``lines`` lines, then fails."""
    (tmp_path / "go.mod").write_text("module example.com/chatty\n\ngo 1.19\n")
    (tmp_path / "chatty_test.go").write_text(GO_TEST % lines)
    env = {
        **os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local",
        "GOCACHE": str(tmp_path / "cache"), "GOPATH": str(tmp_path / "gopath"),
    }  # fmt: skip
    done = subprocess.run(
        ["go", "test", "-json", "."],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    return done.stdout.splitlines()


def _folded(lines: list[str]) -> Test2Json:
    folder = Test2Json()
    for line in lines:
        folder.feed(line)
    return folder


@pytest.mark.skipif(shutil.which("go") is None, reason="needs Go (Debian: golang-go)")
def test_a_failure_after_250_log_lines_reaches_terminal_junit_and_record(tmp_path: Path) -> None:
    folder = _folded(_go_events(tmp_path, 250))
    (case,) = [c for c in folder.results() if c.name == "TestChatty"]
    assert case.status == "failed"
    record = case.to_dict()["output"]  # what the store and --json get
    assert "the real failure: got 3, want 4" in record
    assert "progress line 0 of" in record  # the head is kept too
    assert "the real failure" in junit_xml([case]).decode()

    job = Job("test", "chatty", "chatty", 0)
    job.status, job.reason, job.tests = Status.FAILED, "exit code 1", [case]
    step = StepState("test", StepSpec.model_validate({"run": "true"}))  # type: ignore[arg-type]
    step.jobs = [job]
    run = RunState("p", "r", {"test": step})
    console = Console(width=200, record=True)
    for part in render.failures(run):
        console.print(part)
    assert "the real failure: got 3, want 4" in console.export_text()


@pytest.mark.skipif(shutil.which("go") is None, reason="needs Go (Debian: golang-go)")
def test_an_output_over_the_budget_says_how_much_was_cut(tmp_path: Path) -> None:
    from stockade.pipeline.clip import HEAD_BYTES, TAIL_BYTES

    folder = _folded(_go_events(tmp_path, 5000))
    (case,) = [c for c in folder.results() if c.name == "TestChatty"]
    text = case.to_dict()["output"]
    assert "the real failure: got 3, want 4" in text
    assert "progress line 0 of" in text
    assert "progress line 4999 of" in text
    assert "progress line 2500 of" not in text
    assert len(text.encode()) <= HEAD_BYTES + TAIL_BYTES + 200
    (note,) = [line for line in text.splitlines() if "output cut" in line]
    cut = int(note.split("stockade: ")[1].split()[0])
    kept = sum("progress line" in line for line in text.splitlines())
    assert kept + cut == 5000


def test_clip_keeps_head_and_tail_and_counts_the_rest() -> None:
    from stockade.pipeline.clip import clipped

    lines = [f"{n:04d}\n" for n in range(100)]  # 5 bytes each
    kept = clipped(lines, head=20, tail=30)
    assert kept[:4] == lines[:4]
    assert kept[-6:] == lines[-6:]
    assert kept[4] == (
        "... [stockade: 90 lines (450 bytes) of this test's output cut; see the job's log] ...\n"
    )
    assert clipped(lines[:3], head=20, tail=30) == lines[:3]
    huge = clipped(["x" * 100 + "\n"], head=10, tail=10)
    assert huge[-1] == "x" * 9 + "\n" and "(91 bytes)" in huge[0]


def test_junit_reports_keep_the_tail_too(tmp_path: Path) -> None:
    from stockade.pipeline.junit import read_report

    body = "\n".join(f"log {n}" for n in range(20000)) + "\nAssertionError: the end"
    report = tmp_path / "r.xml"
    report.write_text(
        textwrap.dedent(
            f"""\
            <testsuite name="s"><testcase classname="c" name="t">
            <failure message="boom">{body}</failure></testcase></testsuite>"""
        )
    )
    (case,) = read_report(str(report), "r.xml")
    text = "".join(case.output)
    assert "AssertionError: the end" in text and "output cut" in text
    assert json.dumps(case.to_dict())  # plain data
