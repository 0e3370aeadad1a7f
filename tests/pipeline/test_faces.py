"""The terminal faces, rendered into a fixed-width console; JUnit and test2json."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from stockade.pipeline.test2json import Test2Json, failure_message, junit_xml
from stockade.ui import render
from stockade.ui.observers import JsonObserver, LiveObserver, PlainObserver
from tests.pipeline.helpers import run

PIPELINE = """
pipelines:
  ci:
    steps:
      build:
        for_each: [net, bad, io]
        run: 'echo "compiling ${{ item }}"; test ${{ item }} != bad || { echo "bad.go:3: undefined: x" >&2; exit 1; }'
      test:
        needs: [build]
        run: echo testing
"""


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=100, force_terminal=False, color_system=None), out


def test_plain_log_has_no_cursor_control_and_ends_with_failures_and_summary() -> None:
    console, out = _console()
    run(PIPELINE, jobs=1, keep_going=True, recorder=PlainObserver(console))  # type: ignore[arg-type]
    text = out.getvalue()
    assert "\x1b" not in text
    assert "start  build[net]" in text
    assert "failed    build[bad]" in text and "(exit code 1)" in text
    assert "skipped   step test (needs build, which failed)" in text
    assert "✗ build[bad]: exit code 1" in text
    assert "│ bad.go:3: undefined: x" in text
    summary = text[text.index("ci: failed") :]
    assert "│ build │ failed" in summary and "│ test  │ skipped: needs build" in summary


def test_live_screen_shows_header_bars_and_active_jobs() -> None:
    state = run(PIPELINE, jobs=1, keep_going=True)
    job = state.steps["build"].jobs[0]
    job.status = job.status.RUNNING
    job.last_line = "compiling net/http"
    console, out = _console()
    console.print(render.live(state))
    text = out.getvalue()
    assert text.startswith("pipeline ci  2/3 jobs  1 failed")
    assert "build[net]" in text and "compiling net/http" in text
    assert "━" in text  # the step's bar
    assert "✗ build[bad]" in text


def test_live_screen_shows_a_running_jobs_progress() -> None:
    state = run(PIPELINE, jobs=1, keep_going=True)
    job = state.steps["build"].jobs[0]
    job.status = job.status.RUNNING
    job.progress = (40.0, "uploading part 2 of 5")
    console, out = _console()
    console.print(render.live(state))
    assert "build[net]" in out.getvalue()
    assert "[ 40%] uploading part 2 of 5" in out.getvalue()


def test_progress_reaches_the_json_stream_and_the_job() -> None:
    out = io.StringIO()
    text = (
        "pipelines:\n  p:\n    steps:\n      up:\n        run: echo '  ::progress value=40::half'\n"
    )
    state = run(text, recorder=JsonObserver(out))  # type: ignore[arg-type]
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    progress = [e for e in events if e["event"] == "job_progress"]
    assert [(e["job"], e["value"], e["message"]) for e in progress] == [("up", 40.0, "half")]
    assert state.steps["up"].jobs[0].progress == (40.0, "half")


def test_live_observer_draws_on_a_terminal_and_leaves_the_summary() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system=None)
    run(PIPELINE, jobs=2, keep_going=True, recorder=LiveObserver(console))  # type: ignore[arg-type]
    text = out.getvalue()
    assert "\x1b[?25l" in text  # cursor hidden while live
    assert "ci: failed" in text


def test_json_stream_is_one_object_per_line() -> None:
    out = io.StringIO()
    run(PIPELINE, jobs=2, recorder=JsonObserver(out))  # type: ignore[arg-type]
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_finish"
    finished = {e["job"]: e["status"] for e in events if e["event"] == "job_finish"}
    assert finished["build[bad]"] == "failed"
    assert events[-1]["status"] == "failed"
    assert {"compiling net"} <= {e.get("text") for e in events if e["event"] == "job_output"}


def test_a_junit_failure_message_is_the_line_that_says_what_failed() -> None:
    go_output = [
        "=== RUN   TestAdd\n",
        "    add_test.go:9: Add(1, 2) = 4, want 3\n",
        "--- FAIL: TestAdd (0.00s)\n",
    ]
    assert failure_message(go_output) == "add_test.go:9: Add(1, 2) = 4, want 3"
    assert failure_message(["=== RUN   TestX\n", "--- FAIL: TestX (0.00s)\n"]) == "failed"
    assert failure_message([]) == "failed"
    assert len(failure_message(["x" * 500])) == 200


def test_test2json_and_junit() -> None:
    parser = Test2Json()
    for line in [
        '{"Action":"run","Package":"ex/a","Test":"TestA"}',
        "not json at all",
        '{"Action":"output","Package":"ex/a","Test":"TestA","Output":"boom\\n"}',
        '{"Action":"fail","Package":"ex/a","Test":"TestA","Elapsed":0.5}',
        '{"Action":"skip","Package":"ex/a","Test":"TestS"}',
        '{"Action":"output","Package":"ex/b","Output":"# ex/b\\nb.go:1: syntax error\\n"}',
        '{"Action":"fail","Package":"ex/b","Elapsed":0}',
    ]:
        parser.feed(line)
    cases = parser.results()
    assert [(c.package, c.name, c.status) for c in cases] == [
        ("ex/a", "TestA", "failed"),
        ("ex/a", "TestS", "skipped"),
        ("ex/b", "", "failed"),
    ]
    root = ET.fromstring(junit_xml(cases, name="ci"))
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("errors")) == (
        "testsuites", "3", "2", "0",
    )  # fmt: skip
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["ex/a", "ex/b"]
    assert [s.get("skipped") for s in suites] == ["1", "0"]  # per suite: none on testsuites
    failure = suites[0].find("testcase/failure")
    assert failure is not None and failure.text == "boom\n"
    assert failure.get("message") == "boom"  # what failed, not just "failed"
    package = suites[1].find("testcase/failure")
    assert package is not None and package.get("message") == "b.go:1: syntax error"
    assert suites[1].find("testcase").get("name") == "(package)"  # type: ignore[union-attr]


def test_plain_log_shows_retries_and_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    console, out = _console()
    flaky = """
    pipelines:
      p:
        steps:
          flaky:
            task:
              max_attempts: 3
              exit_codes: {retry: [75]}
              backoff: {initial: 0.01, max: 0.01}
              run: 'n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; test "$n" -ge 2 || exit 75'
    """
    state = run(flaky, recorder=PlainObserver(console))  # type: ignore[arg-type]
    assert state.jobs()[0].status.value == "succeeded"
    text = out.getvalue()
    assert "retry     flaky (attempt 1 retryable; trying again)" in text
    assert "retry     flaky (attempt 2 retryable; trying again)" in text
    assert "succeeded flaky" in text and "after 3 attempts" in text
