"""``examples/junit`` end to end: a real script writes a JUnit report, and
``stockade run`` shows, records and re-exports its tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.schemas import assert_valid_junit

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "junit"
STOCKADE = [sys.executable, "-m", "stockade.cli.main"]


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    """A copy of the example: the report is written into the copy."""
    target = tmp_path / "junit"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".stockade", "reports"))
    return target


def stockade(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STOCKADE, "run", *args],
        cwd=workspace, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_report_tests_are_the_runs_results(workspace: Path) -> None:
    done = stockade(workspace, "--json", "--junit", "all.xml")
    assert done.returncode == 1, done.stderr
    events = _events(done.stdout)
    checks = next(e for e in events if e["event"] == "job_finish" and e["job"] == "checks")
    assert (checks["status"], checks["reason"]) == ("failed", "exit code 1")
    tests = {t["test"]: t for t in checks["tests"]}
    assert {name: t["status"] for name, t in tests.items()} == {
        "check_needs_network": "skipped",
        "check_sum_of_squares": "passed",
        "check_title_case": "failed",
    }
    assert {t["package"] for t in tests.values()} == {"examples.checks"}
    failed = tests["check_title_case"]["output"]
    assert "failure: title() gave 'Stockade Runs Jobs'" in failed
    assert "AssertionError" in failed and "checks.py" in failed  # the traceback
    assert tests["check_sum_of_squares"]["output"] == ""

    # the run recorded in the store holds the same tests
    shown = subprocess.run(
        [*STOCKADE, "runs", "latest", "--json"],
        cwd=workspace, capture_output=True, text=True, check=True,
    )  # fmt: skip
    run = json.loads(shown.stdout)
    assert run["tests"] == {"failed": 1, "passed": 1, "skipped": 1}
    ((package, test, output),) = [
        (t["package"], t["test"], t["output"]) for t in run["failed_tests"]
    ]
    assert (package, test) == ("examples.checks", "check_title_case")
    assert "failure: title() gave 'Stockade Runs Jobs'" in output

    assert_valid_junit(workspace / "all.xml")
    root = ET.parse(workspace / "all.xml").getroot()
    assert (root.get("tests"), root.get("failures")) == ("3", "1")
    (suite,) = root.findall("testsuite")
    assert (suite.get("name"), suite.get("skipped")) == ("examples.checks", "1")
    (case,) = [c for c in suite if c.find("failure") is not None]
    assert case.get("name") == "check_title_case"


def test_plain_view_counts_and_shows_the_failed_test(workspace: Path) -> None:
    done = stockade(workspace, "--plain")
    assert done.returncode == 1, done.stderr
    assert "tests: 1 failed, 1 passed, 1 skipped" in done.stdout
    assert "✗ examples.checks check_title_case" in done.stdout
    assert "│ failure: title() gave 'Stockade Runs Jobs'" in done.stdout


def test_a_report_never_written_fails_the_job_clearly(workspace: Path) -> None:
    (workspace / "reports").mkdir()
    (workspace / "reports" / "never.xml").write_text("<testsuite/>")  # left from before
    done = stockade(workspace, "missing", "--json")
    assert done.returncode == 1, done.stderr
    job = next(e for e in _events(done.stdout) if e["event"] == "job_finish")
    assert job["status"] == "failed"
    assert job["reason"] == (
        "JUnit report 'reports/never.xml' was not written by the job"
        " (the file there is left from before)"
    )
    assert job["tests"] == []


def test_a_malformed_report_fails_the_job_clearly(workspace: Path) -> None:
    (workspace / "checks.py").write_text(
        "import pathlib, sys\n"
        "path = pathlib.Path(sys.argv[1])\n"
        "path.parent.mkdir(parents=True, exist_ok=True)\n"
        "path.write_text('<testsuite><testcase name=\"a\">')\n"
    )
    done = stockade(workspace, "checks", "--plain")
    assert done.returncode == 1, done.stderr
    assert "✗ checks: JUnit report 'reports/checks.xml' is not well-formed XML:" in done.stdout
