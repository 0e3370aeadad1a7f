"""Reading a job's JUnit XML report (hostile ones included), and writing
``--junit`` output that the CI schema accepts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from stockade.pipeline.junit import JobReport, ReportError, read_report
from stockade.pipeline.test2json import TestCase, junit_xml
from tests.schemas import assert_valid_junit

REPORT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="outer">
    <testsuite name="pkg.inner">
      <testcase classname="pkg.inner.T" name="test_ok" time="0.25"/>
      <testcase name="test_bad" time="1,234.5">
        <failure message="assert 1 == 2" type="AssertionError">Traceback
  line 3: assert 1 == 2</failure>
        <system-out>printed before failing</system-out>
      </testcase>
    </testsuite>
    <testcase classname="pkg.T" name="test_crash" time="nope">
      <error message="boom"/>
    </testcase>
    <testcase classname="pkg.T" name="test_later"><skipped/></testcase>
  </testsuite>
</testsuites>
"""


def _write(tmp_path: Path, text: str, name: str = "r.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_cases_statuses_times_and_output(tmp_path: Path) -> None:
    cases = read_report(str(_write(tmp_path, REPORT)), "r.xml")
    got = {(c.package, c.name): (c.status, c.elapsed) for c in cases}
    assert got == {
        ("pkg.inner.T", "test_ok"): ("passed", 0.25),
        ("pkg.inner", "test_bad"): ("failed", 1234.5),  # no classname: its suite's name
        ("pkg.T", "test_crash"): ("failed", 0.0),  # an error counts as a failure
        ("pkg.T", "test_later"): ("skipped", 0.0),
    }
    bad = next(c for c in cases if c.name == "test_bad")
    assert bad.output == [
        "failure: assert 1 == 2\n",
        "Traceback\n",
        "  line 3: assert 1 == 2\n",
        "printed before failing\n",
    ]
    assert next(c for c in cases if c.name == "test_ok").output == []
    assert bad.to_dict()["output"].startswith("failure: assert 1 == 2\n")


def test_a_single_testsuite_root(tmp_path: Path) -> None:
    text = '<testsuite name="s"><testcase name="a"/><testcase name="b"/></testsuite>'
    cases = read_report(str(_write(tmp_path, text)), "r.xml")
    assert [(c.package, c.name, c.status) for c in cases] == [
        ("s", "a", "passed"),
        ("s", "b", "passed"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            '<testsuite name="&b;"/>',
            "is refused",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<testsuite name="&x;"/>',
            "is refused",
        ),
        ("<testsuite><testcase name='a'>", "not well-formed XML"),
        ("", "not well-formed XML"),
        ("<html><body/></html>", "has root <html>: expected <testsuites> or <testsuite>"),
    ],
    ids=["entity-expansion", "external-entity", "truncated", "empty", "not-junit"],
)
def test_bad_reports_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ReportError, match=message) as exc:
        read_report(str(_write(tmp_path, text)), "r.xml")
    assert "'r.xml'" in exc.value.message
    assert "root:" not in exc.value.message  # no file content leaks into the message


def test_job_report_missing_stale_and_escaping(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "out").mkdir(parents=True)
    missing = JobReport(str(workspace), "out/r.xml")
    with pytest.raises(ReportError, match=r"'out/r\.xml' was not written by the job"):
        missing.read()

    _write(workspace / "out", REPORT)
    stale = JobReport(str(workspace), "out/r.xml")  # made before the job: a file from before
    with pytest.raises(ReportError, match="left from before"):
        stale.read()
    _write(workspace / "out", '<testsuite name="s"><testcase name="new"/></testsuite>')
    assert [c.name for c in stale.read()] == ["new"]  # rewritten by the job: read

    os.symlink(tmp_path, workspace / "out" / "up")
    _write(tmp_path, REPORT, "secret.xml")
    escaping = JobReport(str(workspace), "out/up/secret.xml")
    with pytest.raises(ReportError, match="escapes the workspace"):
        escaping.read()


def test_junit_output_is_valid_and_reads_back(tmp_path: Path) -> None:
    cases = [
        TestCase("ex/a", "TestColour", "failed", 0.5, ["\x1b[31mred\x1b[0m and a NUL \x00\n"]),
        TestCase("ex/a", "TestOk", "passed", 0.25),
        TestCase("ex/b", "TestLater", "skipped"),
        TestCase("ex/b", "", "failed", 0.0, ["build failed\n"]),  # a package-level failure
    ]
    written = junit_xml(cases, name="ci <nightly> & \x07")
    assert_valid_junit(written)
    root = ET.fromstring(written)
    assert dict(root.attrib) == {
        "name": "ci <nightly> & \\x07",
        "tests": "4",
        "failures": "2",
        "errors": "0",
        "time": "0.750",
    }
    report = tmp_path / "out.xml"
    report.write_bytes(written)
    back = {(c.package, c.name): c for c in read_report(str(report), "out.xml")}
    assert {key: c.status for key, c in back.items()} == {
        ("ex/a", "TestColour"): "failed",
        ("ex/a", "TestOk"): "passed",
        ("ex/b", "TestLater"): "skipped",
        ("ex/b", "(package)"): "failed",
    }
    assert back[("ex/a", "TestColour")].output == [
        "failure: red and a NUL \\x00\n",  # the message: its first line, colours dropped
        "\\x1b[31mred\\x1b[0m and a NUL \\x00\n",
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('<testsuites skipped="1"/>', "'skipped' attribute not allowed"),
        ('<testsuites><testsuite name="s" tests="1" failures="0"/></testsuites>', "errors"),
        ('<testsuite name="s" tests="1" failures="0" errors="0"><testcase/></testsuite>', "name"),
        ('<testsuite name="s" tests="x" failures="0" errors="0"/>', "x"),
    ],
    ids=["skipped-on-testsuites", "no-errors", "unnamed-case", "bad-count"],
)
def test_the_schema_rejects_what_ci_systems_reject(text: str, reason: str) -> None:
    with pytest.raises(AssertionError, match=reason):
        assert_valid_junit(text.encode())


HOSTILE = """version: 1
pipelines:
  hostile:
    steps:
      fifo:
        run: mkdir -p reports && mkfifo reports/fifo.xml
        events: {format: junit, path: reports/fifo.xml}
      sparse:
        run: mkdir -p reports && truncate -s 1G reports/sparse.xml
        events: {format: junit, path: reports/sparse.xml}
      outside:
        run: mkdir -p reports && ln -s %s reports/outside.xml
        events: {format: junit, path: reports/outside.xml}
"""


def test_hostile_reports_fail_their_steps_and_the_run_ends(tmp_path: Path) -> None:
    """A real ``stockade run``: a FIFO at the report path once blocked the run
    for good in an open; a sparse report and a symlink out are refused too."""
    outside = tmp_path / "outside.xml"
    outside.write_text('<testsuite name="host"><testcase name="secret"/></testsuite>')
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "stockade.yaml").write_text(HOSTILE % outside)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "stockade.cli.main", "run", "hostile", "--json"],
            cwd=workspace, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:  # run's child is killed by subprocess.run
        pytest.fail(f"stockade run did not end: {exc}")
    reasons = {
        e["job"]: e["reason"]
        for e in map(json.loads, done.stdout.splitlines())
        if e["event"] == "job_finish"
    }
    assert reasons == {
        "fifo": "JUnit report 'reports/fifo.xml' is a FIFO, not a regular file; "
        "write a regular file there",
        "sparse": f"JUnit report 'reports/sparse.xml' is {1 << 30} bytes, over the limit "
        f"of {64 << 20} bytes (64MiB); a report this large is not read; "
        "report fewer or shorter test cases",
        "outside": "JUnit report 'reports/outside.xml' escapes the workspace: '..' or a "
        "symlink leads out of it (an absolute symlink does too); keep the file inside "
        "the workspace",
    }, done.stderr
    assert "secret" not in done.stdout


def _xml_char(code: int) -> bool:
    """XML 1.0's ``Char`` production."""
    return code in (0x9, 0xA, 0xD) or any(
        low <= code <= high for low, high in ((0x20, 0xD7FF), (0xE000, 0xFFFD), (0x10000, 0x10FFFF))
    )


def test_junit_output_escapes_exactly_what_xml_cannot_hold() -> None:
    codes = [*range(0x10000), 0x10000, 0x1F600, 0x10FFFF]  # every BMP character, a few above
    root = ET.fromstring(junit_xml([], name="".join(map(chr, codes))))
    assert root.attrib["name"] == "".join(chr(c) if _xml_char(c) else f"\\x{c:02x}" for c in codes)
